#!/usr/bin/env bash
# `make package-test`: install what `make package` built the way a user would, run the installed
# self-test, upgrade over it, uninstall, and check that the user's data survived each step.
#   .deb      dpkg -i (needs root), self-test, a peer, upgrade to a newer .deb, same peer, dpkg -r
#   tarball   install.sh into a fresh HOME, self-test, a peer, install again (upgrade), same peer, uninstall.sh
# Every HOME is a new temporary directory: nothing of this machine's user is read or written.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$ROOT/build/packages"
DEB_FILE="$(ls "$OUT"/rl-swarm-desktop_*.deb | head -1)"
TAR_FILE="$(ls "$OUT"/rl-swarm-desktop-*-linux-*.tar.gz | head -1)"
WORK="$(mktemp -d /tmp/rlswarm-package-test.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }

self_test() {  # EXE HOME: the installed app's own self-test, offline, in that HOME
  local exe="$1" home="$2" out
  out="$(env -i PATH=/usr/bin:/bin HOME="$home" LANG=C.UTF-8 "$exe" self-test 2>/dev/null)" \
    || { sed 's/^/  /' <<<"$out"; fail "self-test of $exe"; }
  sed 's/^/  /' <<<"$out"
  grep -q "with rl-swarm-python" <<<"$out" || fail "the sandbox of $exe does not run the bundle's rl-swarm-python"
}
peer_id() {  # EXE HOME: the peer id of that HOME's identity (created the first time)
  env -i PATH=/usr/bin:/bin HOME="$1" LANG=C.UTF-8 "$2" identity show --json | "$ROOT/.venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["peer_id"])'
}

# ---- .deb ------------------------------------------------------------------------------------------
if [ "$(id -u)" = 0 ]; then
  echo "package-test: .deb $(basename "$DEB_FILE")"
  dpkg -r rl-swarm-desktop >/dev/null 2>&1 || true
  dpkg -i "$DEB_FILE" >/dev/null
  [ -x /usr/bin/rl-swarm-desktop ] || fail "/usr/bin/rl-swarm-desktop missing after dpkg -i"
  [ -f /usr/share/applications/rl-swarm-desktop.desktop ] || fail "menu entry missing"
  [ -f /usr/share/icons/hicolor/256x256/apps/rl-swarm-desktop.png ] || fail "icon missing"
  H="$WORK/deb-home"; mkdir -p "$H"
  self_test /usr/bin/rl-swarm-desktop "$H"
  before="$(peer_id "$H" /usr/bin/rl-swarm-desktop)"
  # version B: the same payload under a newer version number, installed over A as apt would
  NEWER="$WORK/newer"; dpkg-deb -R "$DEB_FILE" "$NEWER"
  sed -i 's/^Version: \(.*\)$/Version: \1+upgrade1/' "$NEWER/DEBIAN/control"
  dpkg-deb --root-owner-group -Zgzip -z1 --build "$NEWER" "$WORK/newer.deb" >/dev/null
  dpkg -i "$WORK/newer.deb" >/dev/null
  dpkg -s rl-swarm-desktop | grep -q '^Version: .*+upgrade1$' || fail "the upgrade did not install"
  after="$(peer_id "$H" /usr/bin/rl-swarm-desktop)"
  [ "$before" = "$after" ] || fail "the upgrade changed the peer id ($before -> $after)"
  echo "  upgrade kept peer $after"
  dpkg -r rl-swarm-desktop >/dev/null
  [ ! -e /opt/rl-swarm-desktop ] || fail "/opt/rl-swarm-desktop left after dpkg -r"
  [ -f "$H/.local/share/rl-swarm-desktop/identity/swarm.pem" ] || fail "dpkg -r removed the user's identity"
  echo "  removed; the user's identity is still there"
else
  echo "package-test: not root: the .deb install is skipped (dpkg -i needs root)"
fi

# ---- tarball ----------------------------------------------------------------------------------------
echo "package-test: tarball $(basename "$TAR_FILE")"
mkdir -p "$WORK/unpack" && tar -C "$WORK/unpack" -xzf "$TAR_FILE"
SRC="$(ls -d "$WORK"/unpack/rl-swarm-desktop-*)"
H="$WORK/tar-home"; mkdir -p "$H"
env -i PATH=/usr/bin:/bin HOME="$H" "$SRC/install.sh" --autostart >/dev/null
EXE="$H/.local/bin/rl-swarm-desktop"
[ -x "$EXE" ] || fail "$EXE missing after install.sh"
[ -f "$H/.local/share/applications/rl-swarm-desktop.desktop" ] || fail "menu entry missing"
[ -f "$H/.config/autostart/rl-swarm-desktop.desktop" ] || fail "autostart entry missing"
self_test "$EXE" "$H"
# two peers over the bundle's DHT (hivemind's p2pd; its `import scipy` answered by the placeholder)
out="$(env -i PATH=/usr/bin:/bin HOME="$H" LANG=C.UTF-8 timeout 300 "$EXE" swarm --peers 2 --rounds 1 --no-chain \
        --data-dir "$WORK/swarm" 2>&1)" || { tail -20 <<<"$out" | sed 's/^/  /'; fail "a two-peer swarm from $EXE"; }
[ "$(grep -cE 'round 0 finished.* 1 peers seen, [1-9][0-9]* rollouts transplanted' <<<"$out")" = 2 ] \
  || { tail -20 <<<"$out" | sed 's/^/  /'; fail "the two installed peers did not trade rollouts"; }
echo "  two installed peers traded rollouts over the DHT"
before="$(peer_id "$H" "$EXE")"
env -i PATH=/usr/bin:/bin HOME="$H" "$SRC/install.sh" >/dev/null  # an upgrade is another install
after="$(peer_id "$H" "$EXE")"
[ "$before" = "$after" ] || fail "reinstalling changed the peer id ($before -> $after)"
echo "  reinstall kept peer $after"
env -i PATH=/usr/bin:/bin HOME="$H" "$SRC/uninstall.sh" >/dev/null
[ ! -e "$H/.local/opt/rl-swarm-desktop" ] || fail "uninstall.sh left the app"
[ ! -e "$EXE" ] || fail "uninstall.sh left $EXE"
[ -f "$H/.local/share/rl-swarm-desktop/identity/swarm.pem" ] || fail "uninstall.sh removed the user's identity"
echo "  uninstalled; the user's identity is still there"
echo "package-test: passed"
