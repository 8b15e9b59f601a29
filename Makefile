# `make run` and `make test` do all set-up on a fresh machine (venv, pip), then run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup run test test-fast bench chaos chaos-quick package package-test package-wsl docker-test docker-gpu tokenizer contracts clean

$(STAMP): pyproject.toml package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,gui,package]'
	npm ci --no-audit --no-fund --loglevel=error   # anvil (local chain) and solc, pinned
	touch $(STAMP)

setup: $(STAMP)

## the main job: the node (headless) with the local defaults; ARGS="node --rounds 3 --pool tiny" etc.
run: setup
	$(VENV)/bin/rl-swarm $(ARGS)

## the whole test suite
test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

## everything but the slow tests
test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

## benchmarks: each prints its table with ratios against a baseline measured in the same run
bench: setup
	$(PY) benchmarks/grpo_round.py
	$(PY) benchmarks/grpo_memory.py
	$(PY) benchmarks/learning.py
	$(PY) benchmarks/sapo.py
	$(PY) benchmarks/swarm_gather.py
	$(PY) benchmarks/memory_guard.py --rounds 100
	$(PY) benchmarks/gpu_check.py   # a GPU machine; on a CPU: --device cpu --isolate --dtypes fp32

## the chaos suite, full (x50 kills, 5-minute outage, 10,000 hostile records, 1-hour soak); CI runs --quick
chaos: setup
	$(PY) benchmarks/chaos.py

chaos-quick: setup
	$(PY) benchmarks/chaos.py --quick

## installers: the PyInstaller bundle (build.spec), a .deb and a per-user tarball in build/packages, with figures
package: setup
	bash installer/linux/build.sh $(PY)

## install the .deb (root) and the tarball into temporary HOMEs, self-test, upgrade, uninstall
package-test: setup
	GZIP_LEVEL=1 bash installer/linux/build.sh $(PY)
	bash installer/linux/test_install.sh

## the WSL2 distro image the Windows installer imports (root, debootstrap; after make package): checked by
## one tiny round inside it
package-wsl:
	bash installer/windows/build_wsl_image.sh

## the CPU Docker image built and run for real: rewards on its chain, restarts, non-root, volumes, health
## (root where dockerd or compose must be started/installed; builds the base image from Debian packages)
docker-test:
	bash installer/docker/test_image.sh

## the GPU variant: built (several GB of CUDA libraries from PyPI) and its size said; it runs only with a GPU
docker-gpu:
	bash installer/docker/gpu_image.sh

## retrain the shipped tiny tokenizer (resources/tokenizer/tiny)
tokenizer: setup
	$(PY) -m desktop.node.tokenizer_build

## recompile resources/contracts/SwarmCoordinator.json from the .sol source
contracts: setup
	node resources/contracts/compile.js

clean:
	rm -rf $(VENV) node_modules build dist *.egg-info .pytest_cache
