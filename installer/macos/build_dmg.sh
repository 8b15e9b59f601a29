#!/usr/bin/env bash
# The disk image users open: the .app and a link to /Applications (drag to install).
#   installer/macos/build_dmg.sh APP DMG
set -euo pipefail
APP="${1:?usage: build_dmg.sh APP DMG}"
DMG="${2:?usage: build_dmg.sh APP DMG}"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
mkdir -p "$(dirname "$DMG")"
rm -f "$DMG"
hdiutil create -volname "RL Swarm" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG"
if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
  codesign --sign "$MACOS_SIGN_IDENTITY" --timestamp "$DMG"
fi
echo "disk image: $DMG"
