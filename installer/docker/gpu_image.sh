#!/usr/bin/env bash
# make docker-gpu: the GPU image (PyPI's CUDA torch), built and measured. It cannot run without a
# GPU and the NVIDIA container toolkit; `docker compose up -d swarm-gpu` runs it where they are.
set -euo pipefail
cd "$(dirname "$0")/../.."
docker info >/dev/null 2>&1 || { echo "docker-gpu: no Docker daemon answers (make docker-test starts one)" >&2; exit 1; }
bash installer/docker/base_image.sh
# shellcheck source=installer/docker/build_extra.sh
. installer/docker/build_extra.sh gpu
began=$(date +%s)
docker compose build swarm-gpu
size_mb=$(( $(docker image inspect -f '{{.Size}}' rl-swarm-desktop:gpu) / 1000000 ))
echo "docker image     rl-swarm-desktop:gpu  ${size_mb} MB  (built in $(( $(date +%s) - began )) s)"
docker run --rm --entrypoint python rl-swarm-desktop:gpu -c \
  'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "(no GPU here: the image is checked, not run)")'
rm -rf build/docker-extra
