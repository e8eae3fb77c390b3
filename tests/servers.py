"""Local servers on loopback for the tests and the benchmarks: free ports, readiness,
and a private redis-server (no persistence), started by whoever needs one."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """Until something accepts connections on ``port``; fails early if ``proc`` (the
    process meant to listen) exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process meant to listen on {port} exited ({proc.returncode})")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class RedisMissingError(RuntimeError):
    """redis-server is not on PATH."""


def start_redis(workdir: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """A redis-server on ``port`` (a free one by default) writing nothing to disk;
    returns the process and ``host:port`` once it accepts connections."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisMissingError(
            "redis-server is not installed: apt-get install redis-server (.ci/run does)"
        )
    port = port or free_port()
    Path(workdir).mkdir(parents=True, exist_ok=True)
    flags = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    proc = subprocess.Popen(
        [binary, "--port", str(port), *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc=proc)
    except (TimeoutError, RuntimeError):
        proc.kill()
        raise
    return proc, f"127.0.0.1:{port}"
