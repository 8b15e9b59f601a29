#!/usr/bin/env bash
# make docker-test: the CPU image, built and run for real with docker-compose.yaml.
#
# Builds the image, runs the local swarm in it until rounds finish and rewards land on the chain,
# restarts the container and recreates it from a rebuilt image (same volumes), and checks each time
# that the peers keep their ids and play on from the round they reached. Checks that nothing in the
# container runs as root, that identity and caches are on the volumes, that the health check says
# healthy and, when a peer is killed, unhealthy. Prints the image size and the build times.
#
# The container is reached only through its dashboard port, published on 127.0.0.1, and with
# `docker compose exec`; never at a bridge address.
#
# No image registry is reachable where this runs, so installer/docker/base_image.sh builds the base
# image the Dockerfile names (debian:bookworm-slim) from Debian packages and tags it locally. As
# root, this starts dockerd (vfs, as these machines need) and installs Docker Compose v2 from
# Debian's package when they are missing.
#
#   bash installer/docker/test_image.sh          KEEP=1 keeps the image and volumes afterwards
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
WORK="$ROOT/build/docker-test"
PROJECT="rlswtest$$"
SERVICE=swarm-cpu
# Docker Compose v2 from Debian (trixie builds it; it needs only libc6 >= 2.34), pinned by hash
COMPOSE_DEB="pool/main/d/docker-compose/docker-compose_2.26.1-4_amd64.deb"
COMPOSE_SHA256="47681197cb2b1ab88206b42a1a92fc75f50d9530a6322d03494a473eed0408ea"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

fail() { echo "docker-test: FAIL: $*" >&2; exit 1; }
say() { echo "docker-test: $*"; }
mkdir -p "$WORK"

# ---- docker and compose ---------------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v dockerd >/dev/null; then
    fail "no Docker daemon answers (as root with docker.io installed, this starts one)"
  fi
  say "starting dockerd (vfs storage; log in $WORK/dockerd.log)"
  nohup dockerd --storage-driver=vfs > "$WORK/dockerd.log" 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || fail "dockerd did not start (see $WORK/dockerd.log)"
fi
if ! docker compose version >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || fail "Docker Compose v2 is missing (docker compose)"
  say "installing Docker Compose v2 from Debian's package"
  curl -fsS -o "$WORK/compose.deb" "$MIRROR/$COMPOSE_DEB" || fail "cannot download $MIRROR/$COMPOSE_DEB"
  echo "$COMPOSE_SHA256  $WORK/compose.deb" | sha256sum -c --quiet - || fail "the compose package's hash differs"
  dpkg -i "$WORK/compose.deb" >/dev/null
fi
compose() { docker compose -p "$PROJECT" "$@"; }

bash installer/docker/base_image.sh

# ---- build ------------------------------------------------------------------------------------------
# shellcheck source=installer/docker/build_extra.sh
. installer/docker/build_extra.sh cpu
RL_SWARM_DASHBOARD_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export RL_SWARM_DASHBOARD_PORT
cleanup() {
  compose logs --no-color > "$WORK/container.log" 2>&1 || true
  if [ -z "${KEEP:-}" ]; then
    compose down -v --rmi local --timeout 60 >/dev/null 2>&1 || true
    docker image rm -f rl-swarm-desktop:cpu >/dev/null 2>&1 || true
    docker builder prune -f >/dev/null 2>&1 || true
    rm -rf build/docker-extra
  fi
}
trap cleanup EXIT

began=$(date +%s)
compose build "$SERVICE" > "$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log" >&2; fail "the image did not build (see $WORK/build.log)"; }
build_s=$(( $(date +%s) - began ))
size_mb=$(( $(docker image inspect -f '{{.Size}}' rl-swarm-desktop:cpu) / 1000000 ))
say "built rl-swarm-desktop:cpu in ${build_s} s, ${size_mb} MB"

# ---- run until rewards are on the chain -------------------------------------------------------------
py() { python3 "$ROOT/installer/docker/probe.py" "$@"; }
compose up -d "$SERVICE" >/dev/null 2>&1
say "running; dashboard published on 127.0.0.1:$RL_SWARM_DASHBOARD_PORT"
dashboard_url() {  # as a user gets it: the log says how, never the token itself
  for _ in $(seq 120); do
    url="$(compose exec -T "$SERVICE" rl-swarm health --url 2>/dev/null | grep -o 'http://127.0.0.1:[0-9]*/?token=[A-Za-z0-9_-]*')"
    if [ -n "$url" ]; then
      token="${url#*token=}"
      if compose logs --no-color "$SERVICE" 2>/dev/null | grep -qF "$token"; then fail "the container's log carries the dashboard's token"; fi
      echo "${url/:8787\//:$RL_SWARM_DASHBOARD_PORT/}"
      return
    fi
    sleep 2
  done
  fail "the container's dashboard never answered (see $WORK/container.log)"
}
url="$(dashboard_url)"
py wait-rounds "$url" 2 900 > "$WORK/before.json" || fail "no two rounds played by every peer in 15 minutes"
services=/data/swarm/services/chain/services.json
for _ in $(seq 60); do
  compose exec -T "$SERVICE" rl-swarm chain status --json --data-dir /data/swarm/peer-0 --services "$services" \
    > "$WORK/chain.json" 2>/dev/null && py rewarded "$WORK/chain.json" && break
  sleep 10
done
py rewarded "$WORK/chain.json" || fail "no reward of the container's peers landed on its chain"
say "rounds played and rewarded on the chain: $(py summary "$WORK/before.json")"

# ---- nothing as root; data and caches on the volumes ------------------------------------------------
compose exec -T "$SERVICE" ps -eo user=,comm= > "$WORK/ps.txt"
if grep -v '^swarm ' "$WORK/ps.txt" | grep -q .; then fail "processes not run by the swarm user: $(grep -v '^swarm ' "$WORK/ps.txt" | tr '\n' ' ')"; fi
say "all $(wc -l < "$WORK/ps.txt") processes run as user swarm (uid $(compose exec -T "$SERVICE" id -u))"
# the sandbox for model-written code has its namespaces in here too (docker-compose.yaml says why)
isolation="$(compose exec -T "$SERVICE" python -c 'from desktop.codezero.sandbox import capabilities; print(*capabilities()[0])')"
for need in no_network pid_namespace private_fs; do
  case " $isolation " in *" $need "*) ;; *) fail "the sandbox in the container lacks $need (it has: $isolation)";; esac
done
say "the sandbox for model code: $isolation"
container="$(compose ps -q "$SERVICE")"
mounts="$(docker inspect -f '{{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}' "$container")"
case "$mounts" in *volume:/data*volume:/cache*|*volume:/cache*volume:/data*) ;; *) fail "data and cache are not volumes: $mounts";; esac
compose exec -T "$SERVICE" sh -c 'test -s /data/swarm/peer-0/identity/swarm.pem && test -s /data/swarm/peer-0/history.jsonl' \
  || fail "identity or history is not on the data volume"
cache_files="$(compose exec -T "$SERVICE" sh -c 'find /cache -type f | wc -l')"
say "volumes: $mounts; identity and history on /data, $cache_files file(s) cached on /cache"

# ---- healthy, by the node's own state ---------------------------------------------------------------
for _ in $(seq 40); do
  health="$(docker inspect -f '{{.State.Health.Status}}' "$container")"
  [ "$health" = healthy ] && break
  sleep 5
done
[ "$health" = healthy ] || fail "the health check says '$health'"
say "health check: $health ($(compose exec -T "$SERVICE" rl-swarm health))"

# ---- the second time: restart the container, then rebuild and recreate it ---------------------------
compose restart -t 60 "$SERVICE" >/dev/null 2>&1
url="$(dashboard_url)"
py resumed "$WORK/before.json" "$url" 600 > "$WORK/after-restart.json" || fail "after a restart the peers did not play on with the same ids"
say "restarted: $(py summary "$WORK/after-restart.json")"
began=$(date +%s)
compose build "$SERVICE" > "$WORK/rebuild.log" 2>&1 || fail "the rebuild failed (see $WORK/rebuild.log)"
rebuild_s=$(( $(date +%s) - began ))
compose up -d --force-recreate "$SERVICE" >/dev/null 2>&1
url="$(dashboard_url)"
py resumed "$WORK/after-restart.json" "$url" 600 > "$WORK/after-recreate.json" || fail "in a new container the peers did not play on with the same ids"
say "rebuilt (${rebuild_s} s) and recreated: $(py summary "$WORK/after-recreate.json")"

# ---- a crashed peer: unhealthy until the swarm brings it back ---------------------------------------
# shellcheck disable=SC2016  # the $(...) runs in the container's shell
compose exec -T "$SERVICE" sh -c 'kill -KILL $(pgrep -f "peer-1 --role solver" | head -1)' \
  || fail "could not kill peer-1 in the container"
said=""
for _ in $(seq 30); do
  if ! said="$(compose exec -T "$SERVICE" rl-swarm health)"; then break; fi
  said=""
  sleep 1
done
[ -n "$said" ] || fail "health stayed healthy with a killed peer"
say "a killed peer: $said"
py resumed "$WORK/after-recreate.json" "$url" 600 > "$WORK/after-crash.json" || fail "the killed peer did not come back"
compose exec -T "$SERVICE" rl-swarm health >/dev/null || fail "unhealthy after the killed peer came back"
say "restarted by the swarm: $(py summary "$WORK/after-crash.json")"

echo
echo "docker image     rl-swarm-desktop:cpu  ${size_mb} MB  (built in ${build_s} s; rebuilt from cache in ${rebuild_s} s)"
echo "docker-test      ok: rounds rewarded on chain, same peer ids after restart, recreate and a killed peer, non-root, volumes, health"
