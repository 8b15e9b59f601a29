<#
  The node's side of RL Swarm on Windows: WSL2 and an "RLSwarm" distro holding the Linux bundle at
  /opt/rl-swarm-desktop. Run by the installer; safe to run again (it checks before it changes).
    setup-wsl.ps1 -Tarball <rl-swarm-wsl.tar> -Version <x.y.z> [-InstallDir <dir>]
  An RLSwarm distro of another version is replaced (upgrades): it holds only the program; the
  user's identity, login, checkpoints and settings live in Windows' own folders (the app names
  them to the node as /mnt/... paths), so nothing of theirs is in what is replaced.
  Exit codes: 0 ready; 3010 WSL was just enabled and Windows must restart; 1 failed (message says why).
#>
param(
  [Parameter(Mandatory = $true)][string]$Tarball,
  [Parameter(Mandatory = $true)][string]$Version,
  [string]$InstallDir = "$env:LOCALAPPDATA\RLSwarm\wsl"
)
$ErrorActionPreference = "Stop"
$Distro = "RLSwarm"
$Exe = "/opt/rl-swarm-desktop/rl-swarm-desktop"

function Invoke-Wsl([string[]]$WslArgs) {
  # wsl.exe writes UTF-16LE to a pipe: read it as such, or every other character is a NUL
  $previous = [Console]::OutputEncoding
  [Console]::OutputEncoding = [System.Text.Encoding]::Unicode
  try {
    $output = & wsl.exe @WslArgs 2>&1 | Out-String
    return @{ Code = $LASTEXITCODE; Text = $output.Trim() }
  } finally {
    [Console]::OutputEncoding = $previous
  }
}

if (-not (Get-Command wsl.exe -ErrorAction SilentlyContinue)) {
  Write-Host "WSL is not available on this Windows. RL Swarm needs Windows 10 2004 or later."
  exit 1
}
$status = Invoke-Wsl @("--status")
if ($status.Code -ne 0) {
  Write-Host "Enabling WSL2 (the node runs there)..."
  $install = Invoke-Wsl @("--install", "--no-distribution")
  if ($install.Code -ne 0) { Write-Host "Could not enable WSL: $($install.Text)"; exit 1 }
  Write-Host "WSL2 is enabled. Restart Windows, then start RL Swarm again to finish the set-up."
  exit 3010
}
$list = Invoke-Wsl @("--list", "--quiet")
$present = ($list.Text -split "`r?`n") -contains $Distro
if ($present) {
  $installed = Invoke-Wsl @("-d", $Distro, "--exec", $Exe, "--version")
  if ($installed.Code -ne 0 -or $installed.Text -ne "rl-swarm $Version") {
    Write-Host "Replacing the $Distro distro ($($installed.Text)) with version $Version; your data is kept."
    $gone = Invoke-Wsl @("--unregister", $Distro)
    if ($gone.Code -ne 0) { Write-Host "Could not remove the old ${Distro}: $($gone.Text)"; exit 1 }
    $present = $false
  }
}
if (-not $present) {
  if (-not (Test-Path $Tarball)) { Write-Host "The Linux bundle $Tarball is missing: reinstall RL Swarm."; exit 1 }
  New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
  Write-Host "Importing the $Distro distro (the node and its local chain)..."
  $import = Invoke-Wsl @("--import", $Distro, $InstallDir, $Tarball, "--version", "2")
  if ($import.Code -ne 0) { Write-Host "Could not import ${Distro}: $($import.Text)"; exit 1 }
}
$check = Invoke-Wsl @("-d", $Distro, "--exec", $Exe, "--version")
if ($check.Code -ne 0 -or $check.Text -ne "rl-swarm $Version") {
  Write-Host "The $Distro distro does not run the node: $($check.Text)"
  exit 1
}
Write-Host "Ready: $($check.Text) in WSL2 ($Distro)."
exit 0
