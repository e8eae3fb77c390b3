"""Put pip into a virtualenv made without it (``python -m venv --without-pip``), for a
Python that has no ``ensurepip`` (Debian and Ubuntu ship it apart, in python3-venv):
pip's own wheel, fetched from the package index and checked against the index's
hash, installs itself.

    .venv/bin/python tools/get_pip.py

The index is ``$PIP_INDEX_URL`` when set, else PyPI.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

PIP_WHEEL = "pip-25.0.1-py3-none-any.whl"
INDEX = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")


def main() -> int:
    page = urllib.request.Request(
        f"{INDEX}/pip/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(page, timeout=60) as response:
        files = json.load(response)["files"]
    entry = next((f for f in files if f["filename"] == PIP_WHEEL), None)
    if entry is None:
        print(f"error: {PIP_WHEEL} is not on {INDEX}/pip/", file=sys.stderr)
        return 3
    url = urllib.parse.urljoin(f"{INDEX}/pip/", entry["url"])
    with urllib.request.urlopen(url, timeout=300) as response:
        wheel = response.read()
    if hashlib.sha256(wheel).hexdigest() != entry["hashes"]["sha256"]:
        print(f"error: {url} does not match the index's sha256", file=sys.stderr)
        return 3
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, PIP_WHEEL)
        path.write_bytes(wheel)
        # a wheel is importable: pip runs from its own wheel to install that wheel
        command = [sys.executable, f"{path}/pip", "install", "--quiet", "--no-index", str(path)]
        return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
