#!/usr/bin/env bash
# Sign the .app (hardened runtime, QtWebEngine's entitlements) and notarize it, each only when its
# variables are set; without them the .app stays unsigned and Gatekeeper asks the user once.
#   MACOS_SIGN_IDENTITY   "Developer ID Application: …" in the keychain
#   MACOS_NOTARY_PROFILE  a `xcrun notarytool store-credentials` profile name
#
#   installer/macos/sign_and_notarize.sh APP
set -euo pipefail
APP="${1:?usage: sign_and_notarize.sh APP}"
HERE="$(cd "$(dirname "$0")" && pwd)"
if [ -z "${MACOS_SIGN_IDENTITY:-}" ]; then
  echo "sign_and_notarize.sh: MACOS_SIGN_IDENTITY not set: the app is left unsigned"
  exit 0
fi
# inside out: every nested binary first, then the bundle itself
find "$APP/Contents" -type f \( -name '*.dylib' -o -name '*.so' -o -perm -u+x \) -print0 |
  xargs -0 codesign --force --timestamp --options runtime --entitlements "$HERE/entitlements.plist" \
    --sign "$MACOS_SIGN_IDENTITY"
codesign --force --timestamp --options runtime --entitlements "$HERE/entitlements.plist" \
  --sign "$MACOS_SIGN_IDENTITY" "$APP"
codesign --verify --deep --strict "$APP"
if [ -z "${MACOS_NOTARY_PROFILE:-}" ]; then
  echo "sign_and_notarize.sh: MACOS_NOTARY_PROFILE not set: signed, not notarized"
  exit 0
fi
ZIP="$(mktemp -d)/app.zip"
ditto -c -k --keepParent "$APP" "$ZIP"
xcrun notarytool submit "$ZIP" --keychain-profile "$MACOS_NOTARY_PROFILE" --wait
xcrun stapler staple "$APP"
