"""``python -m bench`` (``make bench``): every benchmark with what it measures;
``python -m bench NAME [ARGS...]`` runs one (``quality --all`` is ``bench_quality``).

Listing reads each module's docstring without importing it: a benchmark imports
Spark, Feast or XGBoost at the top, and a list should not start them.
"""

from __future__ import annotations

import ast
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def benchmarks() -> dict[str, str]:
    """name -> the first sentence of its docstring, for every ``bench_*.py``."""
    out = {}
    for path in sorted(HERE.glob("bench_*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        out[path.stem.removeprefix("bench_")] = " ".join(doc.split("\n\n")[0].split())
    return out


def main(argv: list[str]) -> int:
    known = benchmarks()
    if not argv or argv[0] in ("-h", "--help"):
        print("python -m bench NAME [ARGS...]   (NAME --help for its options)\n")
        for name, doc in known.items():
            print(f"  {name:18s} {doc}")
        return 0
    name = argv[0].removeprefix("bench_")
    if name not in known:
        print(f"no benchmark {argv[0]!r}; there are: {', '.join(known)}", file=sys.stderr)
        return 2
    sys.argv = [f"bench.bench_{name}", *argv[1:]]
    runpy.run_module(f"bench.bench_{name}", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
