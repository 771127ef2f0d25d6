# ostree-gateway: build, test and demo on Debian 12.
#
#   make demo   install what is missing, build, run scripts/demo.sh
#   make test   install what is missing, then fmt check, clippy -D warnings, all tests
#   make python-ostree-push   the Python ostree-push 1.2.0 venv the compatibility tests use
#
# Rust comes from rustup (cargo on PATH or in ~/.cargo/bin); everything else from Debian.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

# Build dependencies (libostree and gpgme are linked by the gateway).
BUILD_DEPS := pkg-config libostree-dev libgpgme-dev build-essential
# Test and runtime tools: the e2e tests drive real ostree, gpg, ssh-keygen/ssh and sqlite3.
TEST_DEPS := ostree gnupg openssh-client openssh-server sqlite3 python3 curl
# The Python ostree-push 1.2.0 (compatibility tests) needs the Debian OSTree bindings.
PYTHON_DEPS := python3-gi gir1.2-ostree-1.0 python3-cairo python3-yaml python3-venv
DEB_PACKAGES := $(BUILD_DEPS) $(TEST_DEPS) $(PYTHON_DEPS)

# rustup installs into ~/.cargo/bin, which a fresh login shell may not have on PATH yet.
export PATH := $(PATH):$(HOME)/.cargo/bin
CARGO ?= cargo

.PHONY: all deps toolchain build test fmt clippy demo clean python-ostree-push bench

all: build

## deps: install the Debian packages that are missing (no-op, and no apt-get, when all are there)
deps:
	@missing=""; \
	for pkg in $(DEB_PACKAGES); do \
	  case "$$(dpkg -s "$$pkg" 2>/dev/null || true)" in \
	    *"Status: install ok installed"*) ;; \
	    *) missing="$$missing $$pkg" ;; \
	  esac; \
	done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  echo "deps: installing$$missing"; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else \
	  echo "deps: all Debian packages present"; \
	fi

## toolchain: check cargo, add rustfmt/clippy through rustup when they are missing
toolchain:
	@if ! command -v $(CARGO) >/dev/null 2>&1; then \
	  echo "error: cargo not found; install Rust with rustup (https://rustup.rs) or put cargo on PATH" >&2; \
	  exit 1; \
	fi
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy

build: toolchain
	$(CARGO) build --workspace --all-targets

fmt: toolchain
	$(CARGO) fmt --all -- --check

clippy: toolchain
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## python-ostree-push: the unmodified Python client in target/ostree-push-venv (idempotent)
python-ostree-push: deps
	./scripts/install-python-ostree-push.sh

## test: the e2e tests run target/debug/ostree-gateway, which `build` makes first
test: deps toolchain python-ostree-push
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) build --workspace --all-targets
	$(CARGO) test --workspace

demo: deps build
	./scripts/demo.sh

## bench: push benchmarks (bench/run.sh; BENCH_ARGS="--preset small --reps 3" for a quick run)
bench: deps
	./bench/run.sh $(BENCH_ARGS)

clean:
	$(CARGO) clean
	rm -rf demo-state
