#!/usr/bin/env bash
# Makes the project's virtualenv. Debian and Ubuntu ship Python without ensurepip
# (it is in python3-venv): there the venv is made without pip, and pip's own wheel,
# fetched from the package index, installs itself (tools/get_pip.py).
set -euo pipefail
PY="$1"
VENV="$2"
if "$PY" -c 'import ensurepip' >/dev/null 2>&1; then
  exec "$PY" -m venv "$VENV"
fi
echo "make_venv: $PY has no ensurepip; making $VENV without pip and fetching pip from the index"
"$PY" -m venv --without-pip "$VENV"
if ! "$VENV/bin/python" "$(dirname "$0")/get_pip.py"; then
  rm -rf "$VENV"
  echo "error: could not fetch pip from the package index for $VENV" >&2
  echo "  fix: apt-get install python3-venv (or set PIP_INDEX_URL to an index you reach)" >&2
  exit 3
fi
