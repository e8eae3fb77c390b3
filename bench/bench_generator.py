"""Benchmark of the synthetic marketplace generator: events/s, wall time, peak RSS per preset.

    python -m bench.bench_generator --scales tiny small [--days N] [--seed S]

Each preset runs in a fresh child process (so peak RSS is that preset's own)
writing into a temporary lake that is deleted afterwards. Figures are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DS = "2026-01-31"


def _child(scale: str, days: int, seed: int, root: Path) -> dict[str, object]:
    from ranking_jobs.context import RunContext
    from ranking_jobs.data import generate
    from ranking_jobs.settings import Settings

    settings = Settings(
        data_root=str(root / "lake"),
        state_dir=root / "var",
        scale=scale,
        seed=seed,
        history_days=days,
    )
    started = time.perf_counter()
    summary = generate(RunContext.create(DS, settings))
    wall = time.perf_counter() - started
    disk = sum(p.stat().st_size for p in (root / "lake").rglob("*.parquet"))
    rows = summary["rows"]
    assert isinstance(rows, dict)
    return {
        "scale": scale,
        "days": days,
        "users": summary["users"],
        "live_listings": summary["live_listings"],
        "events": rows["raw/events"],
        "item_rows": rows["raw/items"],
        "wall_s": round(wall, 2),
        "simulation_s": summary["simulation_seconds"],
        "events_per_s": round(rows["raw/events"] / wall),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "disk_mib": round(disk / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> None:
    from ranking_jobs.data.presets import PRESETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", default=["tiny", "small"], choices=list(PRESETS))
    parser.add_argument(
        "--days", type=int, default=None, help="history days (default: the preset's recommended)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every simulated day")
    args = parser.parse_args(argv)

    if args.child:
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="%(asctime)s %(name)s %(message)s",
            stream=sys.stderr,
        )
        logging.getLogger("ranking_jobs.lake").setLevel(logging.WARNING)
        print(json.dumps(_child(args.scales[0], args.days, args.seed, args.root)))
        return

    results = []
    for scale in args.scales:
        days = args.days or PRESETS[scale].recommended_history_days
        with tempfile.TemporaryDirectory(prefix=f"bench-gen-{scale}-") as tmp:
            cmd = [
                sys.executable,
                "-m",
                "bench.bench_generator",
                "--child",
                "--scales",
                scale,
                "--days",
                str(days),
                "--seed",
                str(args.seed),
                "--root",
                tmp,
            ]
            if args.verbose:
                cmd.append("--verbose")
            out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        r = results[-1]
        print(
            f"{r['scale']:>6}: {r['days']} days, {r['users']:,} users, {r['live_listings']:,} live "
            f"listings, {r['events']:,} events in {r['wall_s']:.1f}s wall "
            f"({r['simulation_s']:.1f}s simulating) = {r['events_per_s']:,} events/s, "
            f"peak RSS {r['peak_rss_mib']:,} MiB, {r['disk_mib']} MiB of Parquet",
            flush=True,
        )
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
