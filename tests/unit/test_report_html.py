"""The HTML report: sections, numbers, one inline plotly.js, atomic write."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from plotly.offline import get_plotlyjs

from ranking_jobs.report.html import (
    NOT_AVAILABLE,
    SECTION_TITLES,
    ReportData,
    build_html,
    render_report,
)

PLOTLY_MARKER = get_plotlyjs()[:200]  # the bundle's licence banner and first lines


def full_data() -> ReportData:
    rng = np.random.default_rng(0)
    return ReportData(
        title="Nightly ranking report <test>",
        ds="2026-01-31",
        run_id="manual__2026-01-31T00:00:00",
        model_version="marketplace_ranker/7",
        promoted=True,
        gate_reasons=["ndcg@10 +0.0421 over popularity, CI [0.0310, 0.0533] excludes 0"],
        metrics={
            "model": {"ndcg@10": 0.41234, "map@10": 0.30111, "mrr": 0.55561},
            "popularity": {"ndcg@10": 0.37021, "map@10": 0.25009, "mrr": 0.5},
            "random": {"ndcg@10": 0.10007, "n_queries": 300.0},
        },
        ndcg_by_k={
            "model": {5: 0.40, 10: 0.41, 20: 0.45},
            "popularity": {5: 0.33, 10: 0.37, 20: 0.40},
        },
        learning_curves={"train": [0.3, 0.35, 0.38], "valid": [0.28, 0.31, 0.32]},
        learning_curve_metric="ndcg@10",
        feature_importance={f"feature_{i}": float(i) for i in range(40)},
        score_distribution=rng.normal(size=20_000),
        list_stats={"catalogue_coverage": 0.1834, "mean_list_length": 97.5, "users": 1200},
        metric_history=[
            {"ds": "2026-01-30", "metrics": {"ndcg@10": 0.40, "map@10": 0.29}},
            {"ds": "2026-01-29", "ndcg@10": 0.39, "map@10": 0.28},
        ],
    )


def test_full_report_has_every_section_numbers_and_one_plotly_bundle(tmp_path: Path) -> None:
    out = render_report(full_data(), tmp_path / "reports" / "report.html", strict=True)
    assert out == tmp_path / "reports" / "report.html"
    text = out.read_text(encoding="utf-8")

    assert text.startswith("<!DOCTYPE html>")
    for title in SECTION_TITLES.values():
        assert f"<h2>{title}</h2>" in text
    assert NOT_AVAILABLE not in text
    assert "Could not be rendered" not in text
    # the metrics table shows every value (4 decimals; whole numbers without decimals)
    for value in ("0.4123", "0.3011", "0.5556", "0.3702", "0.2501", "0.5000", "0.1001", "300"):
        assert f">{value}</td>" in text
    for value in ("0.1834", "97.5000", "1,200"):  # list stats
        assert f">{value}</td>" in text
    # header, gate and escaping
    assert "manual__2026-01-31T00:00:00" in text and "marketplace_ranker/7" in text
    assert "PROMOTED" in text and "excludes 0" in text
    assert "Nightly ranking report &lt;test&gt;" in text
    # exactly one inline plotly.js bundle, no CDN, one plot per figure section
    assert text.count(PLOTLY_MARKER) == 1
    assert text.count("cdn.plot.ly") == get_plotlyjs().count("cdn.plot.ly")  # only the bundle's
    assert not re.search(r"<script[^>]*\bsrc=", text)  # nothing loaded from elsewhere
    assert len(re.findall(r"Plotly\.newPlot\(", text)) == 5  # one per figure section
    assert "Top 30 of 40 features by gain." in text
    assert "20,000 scores" in text
    # the histogram is binned: the raw scores are not embedded
    assert os.path.getsize(out) < len(get_plotlyjs()) + 200_000


def test_missing_sections_say_not_available(tmp_path: Path) -> None:
    data = ReportData(
        title="Sparse",
        metrics={"model": {"ndcg@10": 0.5}},
        learning_curves={},
        feature_importance=None,
        score_distribution=np.array([]),
        metric_history=[],
    )
    text = render_report(data, tmp_path / "r.html", strict=True).read_text(encoding="utf-8")
    for title in SECTION_TITLES.values():
        assert f"<h2>{title}</h2>" in text
    sections = dict(re.findall(r"<section id='(\w+)'>(.*?)</section>", text, flags=re.S))
    assert set(sections) == set(SECTION_TITLES)
    assert NOT_AVAILABLE not in sections["metrics"]
    assert ">0.5000</td>" in sections["metrics"]
    for key in set(SECTION_TITLES) - {"metrics"}:
        assert NOT_AVAILABLE in sections[key], key
    # plotly.js is still inlined once, even with no figure at all
    assert text.count(PLOTLY_MARKER) == 1


def test_empty_report_renders() -> None:
    text = build_html(ReportData(), strict=True)
    assert text.count(NOT_AVAILABLE) == len(SECTION_TITLES)


def test_not_promoted_and_xgboost_evals_result_shape() -> None:
    data = ReportData(
        promoted=False,
        gate_reasons=["ndcg@10 CI [-0.0100, 0.0200] includes 0"],
        learning_curves={"train": {"ndcg@10": [0.1, 0.2]}, "valid": {"ndcg@10": [0.1, 0.15]}},
        ndcg_by_k={"model": {"10": 0.4, "5": 0.3}},
        score_distribution=[0.1, float("nan"), 0.3, float("inf")],
    )
    text = build_html(data, strict=True)
    assert "NOT PROMOTED" in text and "includes 0" in text
    assert "train ndcg@10" in text and "valid ndcg@10" in text
    assert "2 non-finite left out" in text
    sections = dict(re.findall(r"<section id='(\w+)'>(.*?)</section>", text, flags=re.S))
    assert NOT_AVAILABLE not in sections["learning_curves"]
    assert NOT_AVAILABLE not in sections["ndcg_by_k"]


def test_same_data_same_bytes() -> None:
    assert build_html(full_data()) == build_html(full_data())


def test_bad_section_data_is_reported_not_fatal() -> None:
    data = ReportData(metrics={"model": {"ndcg@10": 0.5}}, metric_history=[{"no_ds": 1}])
    text = build_html(data)
    sections = dict(re.findall(r"<section id='(\w+)'>(.*?)</section>", text, flags=re.S))
    assert "Could not be rendered" in sections["metric_history"]
    assert ">0.5000</td>" in sections["metrics"]
    with pytest.raises(ValueError, match="without 'ds'"):
        build_html(data, strict=True)


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "report.html"
    path.write_text("old report")
    render_report(ReportData(title="new"), path)
    assert "<title>new</title>" in path.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        render_report(ReportData(title="newer"), path)
    assert "<title>new</title>" in path.read_text(encoding="utf-8")  # old file intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # temp cleaned up
