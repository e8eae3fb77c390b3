"""Local servers on loopback for the tests and the benchmarks: free ports, readiness,
a private redis-server (no persistence) and a Spark standalone cluster, started by
whoever needs one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ranking_jobs.airflow_local import free_port  # one helper for the product and the tests
from ranking_jobs.binaries import java_home, redis_server


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


def start_redis(workdir: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """A redis-server on ``port`` (a free one by default) writing nothing to disk;
    returns the process and ``host:port`` once it accepts connections."""
    binary = redis_server()
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


def _wait_for_registered(log: Path, workers: int, procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if log.read_text(errors="replace").count("Registering worker") >= workers:
            return
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.5)
    raise AssertionError(f"not {workers} workers registered:\n{log.read_text()[-3000:]}")


@contextmanager
def spark_cluster(workdir: Path, workers: int = 1, cores: int = 2) -> Iterator[tuple[str, Path]]:
    """A Spark standalone master and ``workers`` worker JVMs of ``cores`` each on
    loopback. Yields the master URL and the folder holding the workers' work folders
    (each executor leaves its log there)."""
    import pyspark

    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "JAVA_HOME": java_home(),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    work = workdir / "worker-work"
    procs: list[subprocess.Popen] = []
    try:
        master_log = workdir / "master.log"
        with master_log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [str(spark_class), "org.apache.spark.deploy.master.Master", "--host",
                     "127.0.0.1", "--port", str(port), "--webui-port", str(free_port())],
                    env=env, stdout=out, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        wait_for_port(port, timeout=90, proc=procs[0])
        for n in range(workers):
            with (workdir / f"worker-{n}.log").open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [str(spark_class), "org.apache.spark.deploy.worker.Worker",
                         f"spark://127.0.0.1:{port}", "--host", "127.0.0.1", "--cores",
                         str(cores), "--memory", "2g", "--webui-port", str(free_port()),
                         "--work-dir", str(work / str(n))],
                        env=env, stdout=out, stderr=subprocess.STDOUT,
                    )
                )  # fmt: skip
        _wait_for_registered(master_log, workers, procs)
        yield f"spark://127.0.0.1:{port}", work
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
