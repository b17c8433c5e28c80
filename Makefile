# pruning_repro: two commands a newcomer needs.
#   make reproduce   set everything up, then run the full embedded reproduction (default bench below)
#   make test        set everything up, then run the notebook tests (nbdev_test) and pytest
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BENCH ?= lenet_fashion_e60_l5
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system reproduce test nbtest pytest export clean-venv bench docs gpu-check

# Debian packages the project needs: the real Fashion-MNIST of the embedded benchmark; Slurm and munge, whose
# single-node cluster the tests start to run a sweep through submitit (tests/test_sweep.py); Chromium, which opens
# the rendered documentation in the tests (tests/test_docs.py).
DEBS := dataset-fashion-mnist slurm-wlm munge chromium
system:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# The virtual environment: torch/torchvision pinned (pip takes them from this machine's disk), then the package
# with its dev tools (nbdev 2, pytest). Re-done when the packaging files change.
$(STAMP): setup.py settings.ini pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: system $(STAMP)

reproduce: setup
	$(BIN)/pruning-repro reproduce --bench $(BENCH)

# The site: index (README), chapters, tutorial and executed sections rendered by nbconvert into _docs/ (offline)
docs: setup
	$(BIN)/python -m pruning_repro.docs _docs

# Speed: GEMM bound, train/eval throughput, one IMP level, vs a per-example DataLoader+PIL reference (bench/results/)
bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

# The CUDA path in one command, under 8 minutes (bench/gpu_check.py): CIFAR epochs fp32/bf16 eager/compiled, host
# syncs per step, a width sweep's recompiles, ResNet-50's eval/EL2N batch, GlobalBatchNorm vs SyncBatchNorm on 2+ GPUs.
# Writes bench/results/<date>-cuda-<gpu>.{json,md}; without CUDA a dry run on the CPU. No setup step: on a borrowed
# machine, `make gpu-check PYTHON_GPU=python3` uses its own torch (default: the venv's python if any, else $(PYTHON)).
PYTHON_GPU ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
GPU_CHECK_OUT ?= bench/results
gpu-check:
	PYTHONPATH=$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH} $(PYTHON_GPU) -m bench.gpu_check --out $(GPU_CHECK_OUT)

# Tests train eagerly (PRUNING_REPRO_COMPILE=0): compiling each smoke-size run would cost more than it saves;
# the compiled path has its own tests in tests/test_speed.py.
nbtest: setup
	cd nbs && PRUNING_REPRO_COMPILE=0 ../$(BIN)/nbdev_test --n_workers 2 --skip_file_re '^(_|\.|sec|app)'

pytest: setup
	$(BIN)/python -m pytest -q

test: nbtest pytest

# Developer loop: notebooks -> py:percent pairs -> package
# (edit either side of a pair; --sync takes the newer one; nbdev_clean then rewrites the .ipynb, so sync again)
export: setup
	$(BIN)/python -m pruning_repro.docs --sync-index
	$(BIN)/jupytext --sync nbs/*.py nbs/*.ipynb
	$(BIN)/nbdev_clean
	$(BIN)/jupytext --sync nbs/*.py nbs/*.ipynb
	$(BIN)/nbdev_export
