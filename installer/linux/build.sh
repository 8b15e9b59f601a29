#!/usr/bin/env bash
# `make package` on Linux: the PyInstaller onedir bundle (build.spec), then a .deb and a per-user
# tarball built from it, then the figures: bundle size, build time, frozen first paint.
#
#   installer/linux/build.sh [PYTHON]          (PYTHON: the venv's interpreter, default .venv/bin/python)
#   GZIP_LEVEL=1 installer/linux/build.sh      (faster, larger archives: what package-test uses)
#   REUSE_BUNDLE=1 installer/linux/build.sh    (repackage build/dist as it is: installer work only)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${1:-$ROOT/.venv/bin/python}"
LEVEL="${GZIP_LEVEL:-6}"
cd "$ROOT"
VERSION="$("$PY" -c 'import desktop; print(desktop.__version__)')"
ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
OUT="$ROOT/build/packages"
BUNDLE="$ROOT/build/dist/rl-swarm-desktop"

began=$(date +%s)
if [ "${REUSE_BUNDLE:-0}" = 1 ] && [ -x "$BUNDLE/rl-swarm-desktop" ]; then
  echo "build.sh: reusing $BUNDLE"
else
  "$PY" -m PyInstaller --noconfirm --clean --log-level WARN --distpath build/dist --workpath build/work build.spec
fi
"$PY" installer/linux/strip_bundle.py "$BUNDLE"
built=$(date +%s)
rm -rf "$OUT" && mkdir -p "$OUT"

# icons: the app's SVG as is, and PNGs rendered by Qt (no ImageMagick needed)
ICONS="$ROOT/build/icons"
"$PY" installer/linux/render_icons.py "$ROOT/resources/icons/app.svg" "$ICONS"

# ---- .deb: /opt/rl-swarm-desktop, a /usr/bin link, menu entry, hicolor icons ----------------------
DEB="$ROOT/build/deb"
rm -rf "$DEB" && mkdir -p "$DEB/DEBIAN" "$DEB/opt" "$DEB/usr/bin" "$DEB/usr/share/applications"
cp -a "$BUNDLE" "$DEB/opt/rl-swarm-desktop"
ln -s /opt/rl-swarm-desktop/rl-swarm-desktop "$DEB/usr/bin/rl-swarm-desktop"
sed "s|@EXEC@|/usr/bin/rl-swarm-desktop|" installer/linux/rl-swarm-desktop.desktop > "$DEB/usr/share/applications/rl-swarm-desktop.desktop"
mkdir -p "$DEB/usr/share/icons" && cp -a "$ICONS/hicolor" "$DEB/usr/share/icons/"
SIZE_KB=$(du -sk "$DEB/opt" | cut -f1)
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@SIZE@|$SIZE_KB|" installer/linux/deb/control > "$DEB/DEBIAN/control"
install -m 755 installer/linux/deb/postinst installer/linux/deb/postrm "$DEB/DEBIAN/"
DEB_FILE="$OUT/rl-swarm-desktop_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zgzip -z"$LEVEL" --build "$DEB" "$DEB_FILE" >/dev/null

# ---- tarball: per user, no root (install.sh / uninstall.sh) ----------------------------------------
TAR_DIR="$ROOT/build/tarball/rl-swarm-desktop-$VERSION"
rm -rf "$ROOT/build/tarball" && mkdir -p "$TAR_DIR"
cp -a "$BUNDLE" "$TAR_DIR/app"
cp -a "$ICONS/hicolor" "$TAR_DIR/icons"
cp installer/linux/rl-swarm-desktop.desktop installer/linux/tarball/install.sh installer/linux/tarball/uninstall.sh "$TAR_DIR/"
chmod 755 "$TAR_DIR/install.sh" "$TAR_DIR/uninstall.sh"
TAR_FILE="$OUT/rl-swarm-desktop-$VERSION-linux-$(uname -m).tar.gz"
tar -C "$ROOT/build/tarball" -cf - "rl-swarm-desktop-$VERSION" | gzip -"$LEVEL" > "$TAR_FILE"
packaged=$(date +%s)

# ---- figures ----------------------------------------------------------------------------------------
paint="$("$PY" installer/linux/first_paint.py "$BUNDLE/rl-swarm-desktop")"
echo
echo "bundle            $(du -sb "$BUNDLE" | awk '{printf "%.0f MB = %.2f GiB", $1/1e6, $1/2^30}')  ($BUNDLE; goal <= 1.0 GB)"
echo "largest parts     $(du -sk "$BUNDLE"/_internal/* | sort -rn | head -5 | awk '{printf "%s %d MB, ", $2, $1/1024}' | sed "s|$BUNDLE/_internal/||g")"
echo ".deb              $(du -sh "$DEB_FILE" | cut -f1)  $DEB_FILE"
echo "tarball           $(du -sh "$TAR_FILE" | cut -f1)  $TAR_FILE"
echo "build time        $((built - began)) s bundle + $((packaged - built)) s packages"
echo "first paint       $paint (frozen, cold, offscreen; goal < 1.5 s)"
