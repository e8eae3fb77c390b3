"""``python -m bench`` (``make bench``): lists every benchmark, runs one by name."""

from __future__ import annotations

from pathlib import Path

from bench.__main__ import main

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_list_names_every_benchmark_with_what_it_measures(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    files = sorted(p.stem.removeprefix("bench_") for p in BENCH.glob("bench_*.py"))
    assert len(files) >= 8
    for name in files:
        line = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert len(line.split(None, 1)[1]) > 20, line  # a real description, not a blank


def test_an_unknown_name_is_refused_with_the_known_ones(capsys):
    assert main(["nosuch"]) == 2
    err = capsys.readouterr().err
    assert "no benchmark 'nosuch'" in err and "quality" in err and "serving" in err
