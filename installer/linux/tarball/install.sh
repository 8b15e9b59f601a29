#!/usr/bin/env bash
# Install RL Swarm Desktop for this user only (no root): the app in ~/.local/opt, a command in
# ~/.local/bin, a menu entry and icons in ~/.local/share. Run it again to upgrade: your identity,
# login, checkpoints and settings live in your data dirs and are kept.
#
#   ./install.sh [--autostart] [--prefix DIR]      (DIR default: ~/.local)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PREFIX="${HOME}/.local"
AUTOSTART=0
while [ $# -gt 0 ]; do
  case "$1" in
    --autostart) AUTOSTART=1 ;;
    --prefix) PREFIX="${2:?--prefix needs a directory}"; shift ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ ! -x "$HERE/app/rl-swarm-desktop" ]; then
  echo "install.sh: $HERE/app/rl-swarm-desktop is missing: run this from the unpacked archive" >&2
  exit 2
fi
APP="$PREFIX/opt/rl-swarm-desktop"
BIN="$PREFIX/bin/rl-swarm-desktop"
# the new copy goes next to the old one first, so a failed copy leaves the installed app working
mkdir -p "$PREFIX/opt" "$PREFIX/bin"
rm -rf "$APP.new"
cp -a "$HERE/app" "$APP.new"
rm -rf "$APP.old"
[ -e "$APP" ] && mv "$APP" "$APP.old"
mv "$APP.new" "$APP"
rm -rf "$APP.old"
ln -sfn "$APP/rl-swarm-desktop" "$BIN"
APPS="$PREFIX/share/applications"
mkdir -p "$APPS" "$PREFIX/share/icons"
sed "s|@EXEC@|$BIN|" "$HERE/rl-swarm-desktop.desktop" > "$APPS/rl-swarm-desktop.desktop"
cp -a "$HERE/icons/." "$PREFIX/share/icons/hicolor/"
if [ "$AUTOSTART" = 1 ]; then
  mkdir -p "${XDG_CONFIG_HOME:-$HOME/.config}/autostart"
  sed "s|@EXEC@|$BIN|" "$HERE/rl-swarm-desktop.desktop" > "${XDG_CONFIG_HOME:-$HOME/.config}/autostart/rl-swarm-desktop.desktop"
fi
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$APPS" || true
echo "RL Swarm Desktop installed in $APP"
echo "start it from the menu, or run: $BIN"
case ":$PATH:" in *":$PREFIX/bin:"*) ;; *) echo "(add $PREFIX/bin to your PATH to run rl-swarm-desktop by name)" ;; esac
