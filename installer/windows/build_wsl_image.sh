#!/usr/bin/env bash
# The WSL2 distro image the Windows installer imports (`wsl --import RLSwarm DIR rl-swarm-wsl.tar
# --version 2`, installer/windows/setup-wsl.ps1): a minimal Debian (debootstrap minbase) holding the
# Linux bundle at /opt/rl-swarm-desktop (desktop.utils.runtime.WSL_EXECUTABLE) and an /etc/wsl.conf; no
# user data (the app names Windows' own folders to the node as /mnt/... paths).
#
# Before it writes the tarball it proves the image on its own: in a chroot of it, with only the
# image's files, the bundle says its version and the node plays one tiny round offline.
#
#   sudo installer/windows/build_wsl_image.sh [BUNDLE_DIR] [OUT_TAR]
#   (defaults: build/dist/rl-swarm-desktop, build/packages/rl-swarm-wsl.tar; `make package` first)
#   DEBIAN_MIRROR=http://deb.debian.org/debian  SUITE=bookworm
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUNDLE="${1:-$ROOT/build/dist/rl-swarm-desktop}"
OUT="${2:-$ROOT/build/packages/rl-swarm-wsl.tar}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE="${SUITE:-bookworm}"
WORK="$ROOT/build/wsl"
IMAGE="$WORK/rootfs"

fail() { echo "build_wsl_image.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap and chroot)"
[ -x "$BUNDLE/rl-swarm-desktop" ] || fail "no bundle at $BUNDLE: run make package first"
command -v debootstrap >/dev/null || fail "needs debootstrap (apt-get install debootstrap)"

began=$(date +%s)
umount_all() {
  for m in "$IMAGE/proc" "$IMAGE/dev"; do mountpoint -q "$m" && umount -l "$m"; done
  return 0
}
trap umount_all EXIT
umount_all
rm -rf "$WORK" && mkdir -p "$WORK" "$(dirname "$OUT")"
debootstrap --variant=minbase "$SUITE" "$IMAGE" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
  || fail "debootstrap failed (see $WORK/debootstrap.log)"

cp -a "$BUNDLE" "$IMAGE/opt/rl-swarm-desktop"
ln -s /opt/rl-swarm-desktop/rl-swarm-desktop "$IMAGE/usr/local/bin/rl-swarm-desktop"
cat > "$IMAGE/etc/wsl.conf" <<'EOF'
# RL Swarm's node distro: started by the app as `wsl -d RLSwarm --exec /opt/rl-swarm-desktop/...`
[boot]
systemd = false
[automount]
enabled = true
options = "metadata"
[interop]
appendWindowsPath = false
EOF
# what an imported distro never uses: package caches, docs, man pages, other locales
rm -rf "$IMAGE"/var/cache/apt/* "$IMAGE"/var/lib/apt/lists/* "$IMAGE"/usr/share/doc/* \
       "$IMAGE"/usr/share/man/* "$IMAGE"/usr/share/info/* "$IMAGE"/var/log/*
find "$IMAGE/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'en*' -exec rm -rf {} +

# ---- the image on its own: version, then one tiny round of the frozen node, offline ----------------
mount -t proc proc "$IMAGE/proc"
mount --bind /dev "$IMAGE/dev"
version="$(chroot "$IMAGE" /opt/rl-swarm-desktop/rl-swarm-desktop --version)"
[ "$version" = "rl-swarm $("$BUNDLE/rl-swarm-desktop" --version | cut -d' ' -f2)" ] || fail "the image says '$version'"
if ! chroot "$IMAGE" env -i HOME=/root PATH=/usr/bin:/bin HF_HUB_OFFLINE=1 \
     /opt/rl-swarm-desktop/rl-swarm-desktop node --pool tiny --rounds 1 --data-dir /tmp/check > "$WORK/check.log" 2>&1; then
  tail -5 "$WORK/check.log" >&2
  fail "the node did not play a round inside the image (see $WORK/check.log)"
fi
rm -rf "$IMAGE/tmp/check"
umount_all

tar --numeric-owner -C "$IMAGE" -cf "$OUT" .
echo "wsl image        $(du -sh "$OUT" | cut -f1)  $OUT ($version, Debian $SUITE minbase, $(( $(date +%s) - began )) s)"
echo "checked          one tiny round inside the image: $(grep -c 'round 0' "$WORK/check.log" || true) line(s) of round 0 in $WORK/check.log"
