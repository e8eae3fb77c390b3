#!/usr/bin/env bash
# Stops with a clear message when something the pipeline needs is missing.
set -euo pipefail
PY="${1:-python3}"
need() { echo "error: $1" >&2; echo "  fix: $2" >&2; exit 3; }

command -v "$PY" >/dev/null 2>&1 || need "$PY not found" "install Python 3.11+ (apt-get install python3 python3-venv)"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || need "Python 3.11+ required, found $("$PY" -V 2>&1)" "install python3.11 or newer and run: make PYTHON=python3.11 ..."
# Free space: installing builds pyspark from its sdist (about 2 GiB transient in the
# uv cache and the temp dir) next to a 2.5 GiB venv; the test suite writes about 1 GiB
# of lakes, stores and models under the temp dir. A full disk otherwise surfaces as
# "No space left on device" deep inside a wheel build.
NEED_GIB="${NEED_GIB:-0}"
if [ "$NEED_GIB" -gt 0 ]; then
  for dir in "$PWD" "${UV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}}" "${TMPDIR:-/tmp}"; do
    probe="$dir"
    while [ ! -d "$probe" ]; do probe=$(dirname "$probe"); done
    free_kib=$(df -Pk "$probe" | awk 'NR == 2 {print $4}')
    free_gib=$((free_kib / 1024 / 1024))
    [ "$free_gib" -ge "$NEED_GIB" ] \
      || need "only ${free_gib} GiB free on the file system of $dir; this step needs ${NEED_GIB} GiB" \
              "free space there (an old uv cache: uv cache prune; old clones and temp files), or point TMPDIR / UV_CACHE_DIR elsewhere"
  done
fi
