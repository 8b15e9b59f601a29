#!/usr/bin/env bash
# macOS: the .app (build.spec's BUNDLE), its .icns made from the app icon, then the .dmg.
# Signing and notarization run only when their variables are set (see sign_and_notarize.sh).
#
#   installer/macos/build_app.sh [PYTHON]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${1:-$ROOT/.venv/bin/python}"
cd "$ROOT"
[ "$(uname -s)" = Darwin ] || { echo "build_app.sh: macOS only (iconutil, hdiutil, codesign)" >&2; exit 2; }
VERSION="$("$PY" -c 'import desktop; print(desktop.__version__)')"

# .icns: iconutil wants an .iconset of PNGs at fixed names (rendered by Qt from the SVG)
"$PY" installer/linux/render_icons.py resources/icons/app.svg build/icons
SET="build/icons/rl-swarm.iconset"
rm -rf "$SET" && mkdir -p "$SET"
for size in 16 32 128 256 512; do
  cp "build/icons/hicolor/${size}x${size}/apps/rl-swarm-desktop.png" "$SET/icon_${size}x${size}.png"
  double=$((size * 2))
  if [ -f "build/icons/hicolor/${double}x${double}/apps/rl-swarm-desktop.png" ]; then
    cp "build/icons/hicolor/${double}x${double}/apps/rl-swarm-desktop.png" "$SET/icon_${size}x${size}@2x.png"
  fi
done
iconutil -c icns "$SET" -o build/icons/rl-swarm.icns

"$PY" -m PyInstaller --noconfirm --clean --log-level WARN --distpath build/dist --workpath build/work build.spec
APP="build/dist/RL Swarm.app"
[ -d "$APP" ] || { echo "build_app.sh: $APP was not built" >&2; exit 1; }
bash installer/macos/sign_and_notarize.sh "$APP"
bash installer/macos/build_dmg.sh "$APP" "build/packages/RL-Swarm-$VERSION.dmg"
