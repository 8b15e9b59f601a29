# RL Swarm's node, local services and web dashboard in a container: one file, two variants.
#
#   docker compose build swarm-cpu          # VARIANT=cpu: torch from PyTorch's CPU wheel index
#   docker compose build swarm-gpu          # VARIANT=gpu: PyPI's torch, which brings the CUDA
#                                           # libraries; the host's driver comes in through the
#                                           # NVIDIA container toolkit (docker-compose.yaml)
#
# The base is Debian's own image; where no registry is reachable, installer/docker/base_image.sh
# builds it from Debian packages and tags it with this name (make docker-test does).
# What a machine hands the build (build/docker-extra/, optional): a torch wheel named in TORCH_WHEEL
# (where the wheel index cannot be reached) and ca.pem, the CA bundle of a TLS-inspecting proxy.
#
# Data (identity, config, checkpoints, logs, chain) live on the /data volume and downloaded models
# on /cache, so a restarted or rebuilt container keeps its peer id and downloads nothing again.
# Layers are few on purpose: the dependencies (slow, rarely changed) first, the source last.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ARG VARIANT=cpu
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=
ARG TORCH_WHEEL=
ARG UID=1000

ENV VIRTUAL_ENV=/opt/rl-swarm/venv \
    PATH=/opt/rl-swarm/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONPATH=/opt/rl-swarm/app \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    RL_SWARM_CONTAINER=1 \
    RL_SWARM_DATA_DIR=/data \
    RL_SWARM_MODEL_CACHE=/cache/models \
    RL_SWARM_ANVIL=/opt/rl-swarm/bin/anvil \
    HF_HOME=/cache/huggingface \
    XDG_CACHE_HOME=/cache \
    HOME=/home/swarm

# System packages, the user, and every Python dependency (torch first: the variant's own build).
# (build/docker-extr[a]: the folder's files when it exists, nothing when not)
COPY pyproject.toml package-lock.json installer/docker/fetch_anvil.py build/docker-extr[a] /opt/rl-swarm/setup/
RUN set -eu; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates tini util-linux procps; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*; \
    useradd --uid "$UID" --create-home --shell /usr/sbin/nologin swarm; \
    mkdir -p /data /cache; chown swarm:swarm /data /cache; \
    python3 -m venv "$VIRTUAL_ENV"; \
    cd /opt/rl-swarm/setup; \
    if [ -f ca.pem ]; then export PIP_CERT="$PWD/ca.pem" SSL_CERT_FILE="$PWD/ca.pem"; fi; \
    index="$TORCH_INDEX"; \
    if [ -n "$TORCH_WHEEL" ]; then torch="./$TORCH_WHEEL"; index="${index:-https://pypi.org/simple}"; \
    else torch="torch==$TORCH_VERSION"; fi; \
    if [ -z "$index" ] && [ "$VARIANT" = cpu ]; then index=https://download.pytorch.org/whl/cpu; fi; \
    if [ -z "$index" ]; then index=https://pypi.org/simple; fi; \
    case "$VARIANT" in cpu|gpu) ;; *) echo "VARIANT must be cpu or gpu" >&2; exit 2;; esac; \
    pip install --quiet --index-url "$index" --extra-index-url https://pypi.org/simple "$torch"; \
    python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        | grep -v '^torch==' > requirements.txt; \
    pip install --quiet -r requirements.txt; \
    python3 fetch_anvil.py package-lock.json /opt/rl-swarm/bin/anvil; \
    rm -rf /opt/rl-swarm/setup; \
    printf '#!/bin/sh\nexec /opt/rl-swarm/venv/bin/python -m desktop.cli "$@"\n' > /usr/local/bin/rl-swarm; \
    chmod 755 /usr/local/bin/rl-swarm

COPY desktop/ /opt/rl-swarm/app/desktop/
COPY resources/ /opt/rl-swarm/app/resources/

USER swarm
WORKDIR /home/swarm
VOLUME ["/data", "/cache"]
# Healthy while every peer starts, trains, waits for its round or is paused by its user; not when
# the dashboard is silent, a peer crashed, or nothing has been heard for 30 minutes (rl-swarm health).
HEALTHCHECK --interval=60s --timeout=20s --start-period=15m --retries=3 CMD ["rl-swarm", "health"]
# tini: signals reach the node (a Python PID 1 would ignore SIGTERM) and orphans are reaped
ENTRYPOINT ["tini", "--", "rl-swarm"]
# what `make run` does without a screen: the local swarm (chain, login server, round keeper and
# three tiny peers), here until stopped; the dashboard on port 8787 (published on 127.0.0.1)
CMD ["swarm", "--rounds", "0"]
