# Everything nodeless needs on a fresh Debian 12 machine, as root. Each run is idempotent:
# apt is skipped when every package is present, `uv sync` is a no-op when the venv matches.
#   make up      install, then start nodeless in the background (UP_ARGS="--port 7443")
#   make test    install, then ruff and the whole test suite (PYTEST_ARGS="-k pki")
#   make down    stop it
# NODELESS_DATA_DIR=/some/dir selects the instance for all three.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := up

# etcd-server now; the rest is the Fargate data path of later issues (runtime, CNI,
# firewall, local registry and image tools for test images, pause-like init).
APT_PACKAGES := python3 python3-pip python3-venv ca-certificates \
	etcd-server containerd runc containernetworking-plugins nftables \
	docker-registry umoci skopeo catatonit busybox-static

export DEBIAN_FRONTEND := noninteractive
# Only PyPI is reachable: use the system's Python, never a downloaded one; never re-lock.
export UV_PYTHON_DOWNLOADS := never
export UV_FROZEN := 1
# Trust the system's CA store (where a site's TLS proxy CA lives), not only uv's bundle.
export UV_SYSTEM_CERTS := 1

# Recursive on purpose: evaluated after the `uv` target may have installed it.
UV = $(shell command -v uv 2>/dev/null || echo python3 -m uv)

UP_ARGS ?=
PYTEST_ARGS ?=

.PHONY: up test down install system-packages uv python-env

up: install
	@if $(UV) run nodeless status >/dev/null 2>&1; then \
	  echo "nodeless is already running:"; $(UV) run nodeless status; \
	else \
	  $(UV) run nodeless up --detach $(UP_ARGS); \
	fi

test: install
	$(UV) run ruff check .
	$(UV) run pytest -p no:cacheprovider -ra $(PYTEST_ARGS)

down:
	$(UV) run nodeless down

install: system-packages python-env

system-packages:
	@if dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  echo "system packages: all present"; \
	elif [ "$$(id -u)" != 0 ]; then \
	  echo "installing system packages needs root: sudo make $(MAKECMDGOALS)" >&2; exit 1; \
	else \
	  apt-get update && apt-get install -y --no-install-recommends $(APT_PACKAGES); \
	fi

uv: system-packages
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
	  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --root-user-action=ignore uv

python-env: uv
	$(UV) sync --frozen
