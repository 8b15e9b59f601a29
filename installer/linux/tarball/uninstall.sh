#!/usr/bin/env bash
# Remove what install.sh put in place. Your identity (swarm.pem), login, checkpoints and settings
# are left where they are; the last line says where, if you want them gone too.
#
#   ./uninstall.sh [--prefix DIR]      (DIR default: ~/.local)
set -euo pipefail
PREFIX="${HOME}/.local"
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="${2:?--prefix needs a directory}"; shift ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
rm -rf "$PREFIX/opt/rl-swarm-desktop"
rm -f "$PREFIX/bin/rl-swarm-desktop" "$PREFIX/share/applications/rl-swarm-desktop.desktop"
rm -f "${XDG_CONFIG_HOME:-$HOME/.config}/autostart/rl-swarm-desktop.desktop"
find "$PREFIX/share/icons/hicolor" -name 'rl-swarm-desktop.*' -delete 2>/dev/null || true
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$PREFIX/share/applications" || true
echo "RL Swarm Desktop removed. Your data is kept in ${XDG_DATA_HOME:-$HOME/.local/share}/rl-swarm-desktop" \
     "and ${XDG_CONFIG_HOME:-$HOME/.config}/rl-swarm-desktop"
