#!/usr/bin/env bash
# Installs the unmodified Python ostree-push 1.2.0 (the tool the gateway must stay compatible
# with) into a venv, for the compatibility tests (tests/tests/python_compat.rs).
#
#   scripts/install-python-ostree-push.sh      (or: make python-ostree-push)
#
# Idempotent: Debian packages are installed only when missing (apt-get through sudo unless
# root), the venv is created only when absent, and pip runs only when ostree-push is not
# already installed at the pinned version. The venv lives at
# ${OSTREE_PUSH_VENV:-<repo>/target/ostree-push-venv}; it uses the system site-packages
# because the OSTree bindings (PyGObject + gir1.2-ostree-1.0) come from Debian.
#
# Prints the path of the `ostree-push` entry point on stdout (progress goes to stderr).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${OSTREE_PUSH_VENV:-$REPO_ROOT/target/ostree-push-venv}
VERSION=1.2.0
PACKAGES=(python3-gi gir1.2-ostree-1.0 python3-cairo python3-yaml python3-venv)

log() { echo "python-ostree-push: $*" >&2; }

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    log "installing ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# A venv whose interpreter is gone (e.g. python3 upgraded) is rebuilt.
if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
    log "creating venv $VENV"
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi

installed=$("$VENV/bin/python" -c '
import importlib.metadata as m
try:
    print(m.version("ostree-push"))
except m.PackageNotFoundError:
    pass
' 2>/dev/null || true)
if [[ $installed != "$VERSION" || ! -x $VENV/bin/ostree-push ]]; then
    log "pip install ostree-push==$VERSION${installed:+ (found $installed)}"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "ostree-push==$VERSION" >&2
else
    log "ostree-push $VERSION already installed in $VENV"
fi

# The entry point must find the Debian OSTree bindings through the venv.
if ! "$VENV/bin/python" -c '
import gi
gi.require_version("OSTree", "1.0")
from gi.repository import OSTree
import otpush
' 2>/dev/null; then
    log "error: the venv cannot import the OSTree bindings or otpush; try removing $VENV"
    exit 1
fi

echo "$VENV/bin/ostree-push"
