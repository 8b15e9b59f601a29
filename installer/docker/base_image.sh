#!/usr/bin/env bash
# The base image the Dockerfile names (debian:bookworm-slim), built here from Debian packages.
#
# No image registry is reachable from the machines the tests run on, so `docker pull` cannot fetch it.
# This builds the same thing from Debian's own packages (debootstrap minbase, as
# installer/windows/build_wsl_image.sh does for the WSL image) and tags it locally under the name the
# Dockerfile uses. Where the name already exists (pulled from Docker Hub, or built before) it is kept.
#
#   sudo installer/docker/base_image.sh [IMAGE_NAME]
#   DEBIAN_MIRROR=http://deb.debian.org/debian  SUITE=bookworm
set -euo pipefail
NAME="${1:-debian:bookworm-slim}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE="${SUITE:-bookworm}"

fail() { echo "base_image.sh: $*" >&2; exit 2; }
command -v docker >/dev/null || fail "needs docker"
if docker image inspect "$NAME" >/dev/null 2>&1; then
  echo "base image       $NAME (already here)"
  exit 0
fi
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap)"
command -v debootstrap >/dev/null || fail "needs debootstrap (apt-get install debootstrap)"

began=$(date +%s)
work="$(mktemp -d /tmp/rl-swarm-base.XXXXXX)"
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase "$SUITE" "$work/rootfs" "$MIRROR" > "$work/debootstrap.log" 2>&1 \
  || { tail -5 "$work/debootstrap.log" >&2; fail "debootstrap failed"; }
# what an image never uses: package caches and lists (the Dockerfile updates them), docs, logs
rm -rf "$work"/rootfs/var/cache/apt/* "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/usr/share/doc/* \
       "$work"/rootfs/usr/share/man/* "$work"/rootfs/usr/share/info/* "$work"/rootfs/var/log/*
tar --numeric-owner -C "$work/rootfs" -c . \
  | docker import --change 'CMD ["bash"]' - "$NAME" >/dev/null
echo "base image       $NAME built from Debian $SUITE packages (debootstrap minbase), $(( $(date +%s) - began )) s"
