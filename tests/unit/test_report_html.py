"""The HTML report: sections, numbers, one inline plotly.js, atomic write."""

from __future__ import annotations

import json
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
        profile={"history_days": 372, "repeat_purchase_share": 0.4312, "first_day": "2010-12-01"},
        chosen_settings={
            "label_window_days": {"value": 14, "source": "profile", "why": "shortest <window>"},
            "exclude_purchased": {"value": False, "source": "explicit", "why": "set explicitly"},
        },
        warnings=["the user-item family is empty: every interaction is a purchase"],
        metrics_rows={"model": {"ndcg@10": 0.2718}},
        metrics={
            "model": {"ndcg@10": 0.41234, "map@10": 0.30111, "mrr": 0.55561},
            "popularity": {"ndcg@10": 0.37021, "map@10": 0.25009, "mrr": 0.5},
            "random": {"ndcg@10": 0.10007, "n_queries": 300.0},
        },
        metrics_shown_only={"model": {"ndcg@10": 0.61237}, "random": {"ndcg@10": 0.5}},
        gains={
            "popularity": [0.0421, 0.0310, 0.0533],
            "model_position_debias_off": [0.004, -0.002, 0.011],
        },
        ndcg_by_k={
            "model": {5: 0.40, 10: 0.41, 20: 0.45},
            "popularity": {5: 0.33, 10: 0.37, 20: 0.40},
        },
        segments={
            "new_users": {"model": {"ndcg@10": 0.2, "n_queries": 12.0}},
            "cold_items": {"model": {"ndcg@10": 0.3, "n_queries": 40.0}},
        },
        candidate_recall={
            "by_source": {"covisitation": 0.3125, "category_popular": 0.25},
            "first_source": {"covisitation": 0.3125, "category_popular": 0.0487},
            "all_generators": 0.3612,
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
        monitoring=[
            {"ds": ds, "metric": metric, "name": name, "value": value, "status": status}
            for ds, metric, name, value, status in (
                ("2026-01-30", "psi", "price", 0.02, "ok"),
                ("2026-01-31", "psi", "price", 3.4567, "fail"),
                ("2026-01-31", "psi", "age_days", 0.01, "ok"),
                ("2026-01-31", "night", "list_coverage", 0.97, "ok"),
                ("2026-01-31", "age_days", "champion", 2.0, "ok"),
            )
        ],
        monitoring_thresholds={"warn": 0.25, "fail": 1.0},
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
    # the data profile, the settings it chose and why, the warnings, the row metrics
    assert ">372</td>" in text and ">0.4312</td>" in text and ">2010-12-01</td>" in text
    assert "<td>14</td><td>profile</td><td>shortest &lt;window&gt;</td>" in text
    assert "<td>no</td><td>explicit</td>" in text
    assert "<li>the user-item family is empty: every interaction is a purchase</li>" in text
    assert ">0.2718</td>" in text
    # tonight's largest drift first, its status, and the three trend charts
    assert "<td>price</td><td class='num'>3.457</td><td>fail</td>" in text
    for chart in ("psi", "night", "age_days"):
        assert f"fig-monitoring-{chart}" in text
    # header, gate and escaping
    assert "manual__2026-01-31T00:00:00" in text and "marketplace_ranker/7" in text
    assert "PROMOTED" in text and "excludes 0" in text
    assert "Nightly ranking report &lt;test&gt;" in text
    # exactly one inline plotly.js bundle, no CDN, one plot per figure section
    assert text.count(PLOTLY_MARKER) == 1
    assert text.count("cdn.plot.ly") == get_plotlyjs().count("cdn.plot.ly")  # only the bundle's
    assert not re.search(r"<script[^>]*\bsrc=", text)  # nothing loaded from elsewhere
    assert len(re.findall(r"Plotly\.newPlot\(", text)) == 10  # 7 sections, 3 monitoring charts
    assert "All sources together: 0.3612" in text  # candidate recall
    assert "<th scope='row'>covisitation</th><td class='num' title=\"0.3125\">0.3125</td>" in text
    assert ">0.6124</td>" in text  # shown-only metrics
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


def _traces(text: str, div_id: str) -> list[dict]:
    """The plotly traces of one figure, decoded from its ``Plotly.newPlot`` call."""
    start = re.search(rf'Plotly\.newPlot\(\s*"{div_id}",\s*', text)
    assert start, div_id
    return json.JSONDecoder().raw_decode(text, start.end())[0]


def _section(text: str, key: str) -> str:
    return dict(re.findall(r"<section id='(\w+)'>(.*?)</section>", text, flags=re.S))[key]


def test_gain_and_shap_importance_side_by_side_in_one_feature_order() -> None:
    shap = {f"feature_{i}": float(40 - i) for i in range(40)}  # reversed w.r.t. gain
    gain = {f"feature_{i}": float(i) for i in range(1, 40)}  # feature_0 never split on
    text = build_html(
        ReportData(feature_importance=gain, shap_importance=shap, max_features=5), strict=True
    )
    section = _section(text, "feature_importance")
    assert NOT_AVAILABLE not in section
    assert "Top 5 of 40 features by mean |SHAP|." in section
    gain_bars, shap_bars = _traces(text, "fig-feature-importance")
    assert (gain_bars["name"], shap_bars["name"]) == ("gain", "mean |SHAP|")  # gain on the left
    top = ["feature_4", "feature_3", "feature_2", "feature_1", "feature_0"]  # largest at the top
    assert shap_bars["y"] == gain_bars["y"] == top
    assert shap_bars["x"] == [36.0, 37.0, 38.0, 39.0, 40.0]
    assert gain_bars["x"] == [4.0, 3.0, 2.0, 1.0, 0.0]


@pytest.mark.parametrize("field", ["feature_importance", "shap_importance"])
def test_importance_with_one_kind_only_draws_that_kind(field: str) -> None:
    """Summaries written before SHAP was computed still render their gain chart."""
    text = build_html(ReportData(**{field: {"a": 1.0, "b": 2.0}}), strict=True)
    (bars,) = _traces(text, "fig-feature-importance")
    assert bars["name"] == ("gain" if field == "feature_importance" else "mean |SHAP|")
    assert bars["y"] == ["a", "b"]


def test_metric_history_one_point_per_day_and_gate_markers() -> None:
    history = [
        {"ds": "2026-01-30", "metrics": {"model": 0.30, "best baseline": 0.20}, "promoted": True},
        {"ds": "2026-01-29", "metrics": {"model": 0.10, "best baseline": 0.20}, "promoted": False},
        {"ds": "2026-01-30", "metrics": {"model": 0.35, "best baseline": 0.21}, "promoted": True},
        {"ds": "2026-01-28", "metrics": {"model": 0.25}},  # an older summary: no verdict
    ]
    text = build_html(ReportData(metric_history=history), strict=True)
    traces = {t["name"]: t for t in _traces(text, "fig-metric-history")}
    assert set(traces) == {"model", "best baseline", "promoted", "not promoted"}
    assert traces["model"]["x"] == ["2026-01-28", "2026-01-29", "2026-01-30"]
    assert traces["model"]["y"] == [0.25, 0.10, 0.35]  # the rerun of the 30th replaced it
    assert traces["best baseline"]["y"][1:] == [0.20, 0.21]
    assert (traces["promoted"]["x"], traces["promoted"]["y"]) == (["2026-01-30"], [0.35])
    assert (traces["not promoted"]["x"], traces["not promoted"]["y"]) == (["2026-01-29"], [0.1])


def test_write_report_reads_history_and_older_summaries(settings) -> None:
    from ranking_jobs.context import RunContext
    from ranking_jobs.report import write_report
    from ranking_jobs.summaries import write_summary

    def night(ds: str, model: float, promoted: bool, **extra: object) -> None:
        metrics = {
            "model": {"ndcg@10": model},
            "popularity": {"ndcg@10": 0.2},
            "random": {"ndcg@10": 0.1},
        }
        summary = {"metrics": metrics, "promoted": promoted, "best_baseline": "popularity"}
        write_summary(RunContext.create(ds, settings), "evaluate_model", {**summary, **extra})

    night("2026-01-29", 0.15, False)
    night("2026-01-30", 0.30, True)
    night("2026-01-30", 0.31, True)  # the same day run again
    night("2026-01-31", 0.32, True, best_baseline="random")
    night("2026-02-01", 0.99, True)  # after the report's day: not part of its history
    ctx = RunContext.create("2026-01-31", settings)
    write_summary(ctx, "train_model", {"model": "m/v3", "importance_gain": {"ctr_7d": 2.0}})

    text = Path(write_report(ctx)["report"]).read_text(encoding="utf-8")
    assert "Could not be rendered" not in text
    traces = {t["name"]: t for t in _traces(text, "fig-metric-history")}
    assert traces["model"]["x"] == ["2026-01-29", "2026-01-30", "2026-01-31"]
    assert traces["model"]["y"] == [0.15, 0.31, 0.32]
    assert traces["best baseline"]["y"] == [0.2, 0.2, 0.1]
    assert traces["not promoted"]["x"] == ["2026-01-29"]
    (bars,) = _traces(text, "fig-feature-importance")  # no SHAP in this summary: gain only
    assert bars["name"] == "gain" and bars["y"] == ["ctr_7d"]


def test_gains_forest_plot_colours_only_intervals_above_zero() -> None:
    gains = {"random": [0.12, 0.04, 0.20], "champion": [0.01, -0.02, 0.03]}
    text = build_html(ReportData(gains=gains), strict=True)
    (points,) = _traces(text, "fig-gains")
    assert points["y"] == ["champion", "random"]  # sorted by gain
    assert points["x"] == [0.01, 0.12]
    assert points["marker"]["color"] == ["#a50e0e", "#137333"]
    assert points["error_x"]["arrayminus"] == pytest.approx([0.03, 0.08])
