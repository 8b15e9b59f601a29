"""The installer scripts: linted, and run for real where Linux can run them (the tarball's
install/uninstall on a stand-in bundle). `make package-test` runs them on the real bundle."""

import plistlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import desktop

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted([*ROOT.glob("installer/**/*.sh"), ROOT / "installer/linux/deb/postinst", ROOT / "installer/linux/deb/postrm"])


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_scripts_parse_and_pass_shellcheck(script):
    shell = "sh" if script.name in ("postinst", "postrm") else "bash"
    assert subprocess.run([shell, "-n", str(script)], capture_output=True, text=True).returncode == 0
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    lint = subprocess.run(["shellcheck", "-S", "warning", str(script)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


def test_macos_info_plist_names_this_version_and_the_bundle_executable():
    info = plistlib.loads((ROOT / "installer/macos/Info.plist").read_bytes())
    assert info["CFBundleShortVersionString"] == desktop.__version__
    assert info["CFBundleExecutable"] == "rl-swarm-desktop"
    assert info["CFBundleIdentifier"] == "net.rl-swarm.desktop"
    assert info["NSHighResolutionCapable"] is True
    entitlements = plistlib.loads((ROOT / "installer/macos/entitlements.plist").read_bytes())
    assert entitlements["com.apple.security.cs.allow-jit"] is True  # QtWebEngine's JavaScript


def test_windows_installer_is_per_user_and_keeps_user_data():
    iss = (ROOT / "installer/windows/rl-swarm.iss").read_text()
    assert re.search(r"^PrivilegesRequired=lowest$", iss, re.M)
    assert "{localappdata}\\Programs" in iss
    assert "[UninstallDelete]" not in iss  # nothing of the user's is deleted
    ps1 = (ROOT / "installer/windows/setup-wsl.ps1").read_text()
    assert "[System.Text.Encoding]::Unicode" in ps1  # wsl.exe's UTF-16LE output
    assert '"--import", $Distro, $InstallDir, $Tarball, "--version", "2"' in ps1
    assert "exit 3010" in ps1  # WSL just enabled: restart needed
    # an upgrade replaces a distro of another version (it holds no user data), and the installer says which
    assert '"--unregister", $Distro' in ps1 and '$installed.Text -ne "rl-swarm $Version"' in ps1
    assert '-Version ""{#AppVersion}""' in iss


def test_the_desktop_entry_runs_the_app():
    entry = (ROOT / "installer/linux/rl-swarm-desktop.desktop").read_text()
    fields = dict(line.split("=", 1) for line in entry.splitlines() if "=" in line)
    assert fields["Type"] == "Application"
    assert fields["Exec"] == "@EXEC@ gui"
    assert fields["Icon"] == "rl-swarm-desktop"


def test_build_spec_prunes_only_what_nothing_loads():
    spec = (ROOT / "build.spec").read_text()
    code = spec[spec.index("PRUNE = re.compile("):spec.index("a.binaries = [")]
    ns = {"re": re}
    exec(code, ns)
    prune = ns["PRUNE"]
    for kept in ("PySide6/Qt/lib/libQt6WebEngineCore.so.6", "PySide6/Qt/lib/libQt6Quick.so.6",
                 "PySide6/Qt/lib/libQt6QuickWidgets.so.6", "PySide6/Qt/lib/libQt6Positioning.so.6",
                 "PySide6/Qt/translations/qtwebengine_locales/en-US.pak", "torch/bin/torch_shm_manager",
                 "torch/lib/libtorch_cpu.so", "PySide6/Qt/resources/qtwebengine_resources.pak"):
        assert not prune.search(kept), kept
    for dropped in ("PySide6/Qt/lib/libQt63DCore.so.6", "libQt6Quick3DPhysics.so.6", "PySide6/Qt/qml/QtQuick/x",
                    "PySide6/Qt/translations/qt_de.qm", "torch/test/Dict_test", "torch/bin/test_api"):
        assert prune.search(dropped), dropped


@pytest.fixture
def unpacked(tmp_path):
    """The tarball's layout around a stand-in executable (the real bundle is 1.5 GB)."""
    src = tmp_path / "rl-swarm-desktop-9.9.9"
    (src / "app").mkdir(parents=True)
    exe = src / "app" / "rl-swarm-desktop"
    exe.write_text("#!/bin/sh\necho \"rl-swarm 9.9.9 $*\"\n")
    exe.chmod(0o755)
    (src / "icons" / "256x256" / "apps").mkdir(parents=True)
    (src / "icons" / "256x256" / "apps" / "rl-swarm-desktop.png").write_bytes(b"png")
    for name in ("install.sh", "uninstall.sh"):
        shutil.copy(ROOT / "installer/linux/tarball" / name, src / name)
    shutil.copy(ROOT / "installer/linux/rl-swarm-desktop.desktop", src)
    return src


def _run(script: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(home)})


def test_tarball_install_upgrade_and_uninstall_keep_the_users_data(unpacked, tmp_path):
    home = tmp_path / "home"
    data = home / ".local/share/rl-swarm-desktop/identity"
    data.mkdir(parents=True)
    (data / "swarm.pem").write_text("the user's key")
    done = _run(unpacked / "install.sh", home, "--autostart")
    assert done.returncode == 0, done.stderr
    exe = home / ".local/bin/rl-swarm-desktop"
    assert subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout.startswith("rl-swarm 9.9.9")
    entry = (home / ".local/share/applications/rl-swarm-desktop.desktop").read_text()
    assert f"Exec={exe} gui" in entry
    assert (home / ".config/autostart/rl-swarm-desktop.desktop").is_file()
    assert (home / ".local/share/icons/hicolor/256x256/apps/rl-swarm-desktop.png").is_file()
    again = _run(unpacked / "install.sh", home)  # an upgrade is another install
    assert again.returncode == 0, again.stderr
    assert not (home / ".local/opt/rl-swarm-desktop.old").exists()
    gone = _run(unpacked / "uninstall.sh", home)
    assert gone.returncode == 0, gone.stderr
    assert not exe.exists()
    assert not (home / ".local/opt/rl-swarm-desktop").exists()
    assert not (home / ".config/autostart/rl-swarm-desktop.desktop").exists()
    assert (data / "swarm.pem").read_text() == "the user's key"
    assert "data is kept" in gone.stdout


def test_install_refuses_bad_input_and_changes_nothing(unpacked, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    bad = _run(unpacked / "install.sh", home, "--frobnicate")
    assert bad.returncode == 2
    assert "unknown option --frobnicate" in bad.stderr
    (unpacked / "app" / "rl-swarm-desktop").unlink()
    missing = _run(unpacked / "install.sh", home)
    assert missing.returncode == 2
    assert "missing" in missing.stderr
    assert list(home.iterdir()) == []


def test_icons_render_from_the_app_svg(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "installer/linux/render_icons.py"),
                           str(ROOT / "resources/icons/app.svg"), str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    png = tmp_path / "hicolor/256x256/apps/rl-swarm-desktop.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "hicolor/scalable/apps/rl-swarm-desktop.svg").is_file()
