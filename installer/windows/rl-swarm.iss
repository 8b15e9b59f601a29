; Inno Setup script: RL Swarm Desktop for Windows, per user (no administrator rights).
; The window is the native Windows build of the app (build.spec on Windows); the node runs in WSL2
; (hivemind has no Windows build): setup-wsl.ps1 imports the RLSwarm distro holding the Linux bundle.
;   iscc /DAppVersion=0.1.0 /DBuildDir=..\..\build installer\windows\rl-swarm.iss
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef BuildDir
  #define BuildDir "..\..\build"
#endif

[Setup]
AppId={{5C7E1D2A-7A43-4C1B-9F0E-3B8D2C6A9E11}
AppName=RL Swarm
AppVersion={#AppVersion}
AppPublisher=RL Swarm Desktop
DefaultDirName={localappdata}\Programs\RL Swarm
DefaultGroupName=RL Swarm
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
OutputDir={#BuildDir}\packages
OutputBaseFilename=RL-Swarm-Setup-{#AppVersion}
Compression=lzma2
SolidCompression=yes
WizardStyle=modern
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
UninstallDisplayIcon={app}\rl-swarm-desktop.exe

[Tasks]
Name: "autostart"; Description: "Start RL Swarm when I sign in to Windows"; Flags: unchecked
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; Flags: unchecked

[Files]
Source: "{#BuildDir}\dist\rl-swarm-desktop\*"; DestDir: "{app}"; Flags: recursesubdirs createallsubdirs ignoreversion
Source: "{#BuildDir}\packages\rl-swarm-wsl.tar"; DestDir: "{app}\wsl"; Flags: ignoreversion
Source: "setup-wsl.ps1"; DestDir: "{app}\wsl"; Flags: ignoreversion

[Icons]
Name: "{group}\RL Swarm"; Filename: "{app}\rl-swarm-desktop.exe"; Parameters: "gui"
Name: "{group}\Uninstall RL Swarm"; Filename: "{uninstallexe}"
Name: "{userdesktop}\RL Swarm"; Filename: "{app}\rl-swarm-desktop.exe"; Parameters: "gui"; Tasks: desktopicon
Name: "{userstartup}\RL Swarm"; Filename: "{app}\rl-swarm-desktop.exe"; Parameters: "gui"; Tasks: autostart

[Run]
; WSL2 and the RLSwarm distro: enables WSL when missing (Windows then asks for a restart)
Filename: "powershell.exe"; Parameters: "-NoProfile -ExecutionPolicy Bypass -File ""{app}\wsl\setup-wsl.ps1"" -Tarball ""{app}\wsl\rl-swarm-wsl.tar"" -Version ""{#AppVersion}"""; StatusMsg: "Setting up the Linux side of the node (WSL2)…"; Flags: waituntilterminated
Filename: "{app}\rl-swarm-desktop.exe"; Parameters: "gui"; Description: "Start RL Swarm"; Flags: nowait postinstall skipifsilent

[UninstallRun]
; the distro holds only the program; the user's identity, login and checkpoints live in
; %LOCALAPPDATA%\rl-swarm-desktop on the Windows side and are kept
Filename: "wsl.exe"; Parameters: "--unregister RLSwarm"; Flags: runhidden; RunOnceId: "UnregisterRLSwarm"
