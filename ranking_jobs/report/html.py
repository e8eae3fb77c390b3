"""One self-contained HTML report of a nightly run.

:func:`render_report` turns a plain :class:`ReportData` into a single HTML file
that opens offline: plotly.js is inlined once in the page head and every figure
only references it. Every section is optional; a section without data shows a
short "not available" note instead. Figures get fixed element ids and nothing
in the page depends on the clock, so the same data renders to the same bytes.

The score histogram is binned here with numpy and drawn as bars, so the file
stays small however many scores the night produced.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

log = logging.getLogger(__name__)

__all__ = ["NOT_AVAILABLE", "SECTION_TITLES", "ReportData", "build_html", "render_report"]

NOT_AVAILABLE = "Not available for this run."

SECTION_TITLES: dict[str, str] = {
    "gate": "Gate decision",
    "data_profile": "Data profile and the settings it chose",
    "warnings": "Data shape warnings",
    "metrics": "Final lists on the hold-out (model and every baseline)",
    "metrics_rows": "Metrics on the hold-out candidate rows (diagnostic)",
    "metrics_shown_only": "Metrics on the shown items only",
    "gains": "Model against each method (NDCG gain, 95% bootstrap CI)",
    "ndcg_by_k": "NDCG by cut-off",
    "segments": "NDCG by segment",
    "candidate_recall": "Candidate recall",
    "learning_curves": "Learning curves",
    "feature_importance": "Feature importance",
    "score_distribution": "Score distribution",
    "list_stats": "List coverage and length",
    "metric_history": "Metric history",
    "monitoring": "Monitoring over the last nights",
}

_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
_HIST_BINS = 50


@dataclass
class ReportData:
    """Everything the report can show; leave a field empty to skip its section.

    * ``promoted`` / ``gate_reasons``: the evaluation gate's decision (``None``: no gate ran).
    * ``profile``: the data profile, name -> value; ``chosen_settings``: setting ->
      {value, source, why}, what the night derived from it or took as set.
    * ``warnings``: sentences on what the data lacks (a feature family left out); an
      empty list says there were none.
    * ``metrics``: method -> metric -> value, e.g. ``{"model": {"ndcg@10": 0.41}}``;
      ``metrics_rows`` and ``metrics_shown_only``: the same on the hold-out's candidate
      rows and on the logged impressions alone.
    * ``gains``: method -> (difference, CI low, CI high) of the model's per-query
      NDCG over that method's, drawn as a forest plot.
    * ``ndcg_by_k``: method -> k -> NDCG@k, drawn as grouped bars.
    * ``segments``: segment -> method -> metric -> value; ``segment_metric`` is drawn.
    * ``candidate_recall``: per source, the share of the hold-out's engaged items it
      proposed (``by_source``) and was credited with (``first_source``); ``all_generators``.
    * ``learning_curves``: split -> one value per boosting round, or XGBoost's
      ``evals_result`` shape split -> metric -> values.
    * ``feature_importance``: feature -> gain; ``shap_importance``: feature -> mean
      |SHAP|. Drawn side by side for the ``max_features`` largest (by SHAP when given).
    * ``score_distribution``: the scores of the night's lists (any length).
    * ``list_stats``: coverage / length statistics, name -> value.
    * ``monitoring``: the nightly monitoring records, one dict per (ds, metric, name,
      value, status) row: tonight's largest PSIs as a table, trends of the largest
      PSIs, the night's figures and the ages as line charts over the nights given.
    * ``monitoring_thresholds``: PSI ``warn`` and ``fail``, drawn as lines.
    * ``metric_history``: past runs, each ``{"ds": ..., "metrics": {...}}`` or a
      flat ``{"ds": ..., "ndcg@10": ...}``; one point per ``ds`` (the last entry wins).
      An optional ``"promoted"`` marks the gate's verdict on the ``"model"`` series.
    """

    title: str = "Nightly ranking report"
    ds: str | dt.date | None = None
    run_id: str | None = None
    model_version: str | None = None
    promoted: bool | None = None
    gate_reasons: list[str] = field(default_factory=list)
    profile: Mapping[str, Any] | None = None
    chosen_settings: Mapping[str, Mapping[str, Any]] | None = None
    warnings: list[str] | None = None
    metrics: Mapping[str, Mapping[str, Any]] | None = None
    metrics_rows: Mapping[str, Mapping[str, Any]] | None = None
    metrics_shown_only: Mapping[str, Mapping[str, Any]] | None = None
    gains: Mapping[str, Sequence[float]] | None = None
    ndcg_by_k: Mapping[str, Mapping[int | str, float]] | None = None
    segments: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None
    segment_metric: str = "ndcg@10"
    candidate_recall: Mapping[str, Any] | None = None
    learning_curves: Mapping[str, Any] | None = None
    learning_curve_metric: str = "metric"
    feature_importance: Mapping[str, float] | None = None
    shap_importance: Mapping[str, float] | None = None
    max_features: int = 30
    score_distribution: ArrayLike | None = None
    list_stats: Mapping[str, Any] | None = None
    metric_history: Sequence[Mapping[str, Any]] | None = None
    monitoring: Sequence[Mapping[str, Any]] | None = None
    monitoring_thresholds: Mapping[str, float] | None = None
    generated_at: str | dt.datetime | None = None


# --- small helpers -----------------------------------------------------------------


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: object) -> str:
    """Display form of a table cell: 4 decimals for floats, integers without decimals."""
    if value is None:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return "—"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.4f}"
    return str(value)


def _cell(value: object) -> str:
    title = ""
    if isinstance(value, float | np.floating) and math.isfinite(float(value)):
        title = f' title="{float(value)!r}"'
    return f"<td class='num'{title}>{_esc(_fmt(value))}</td>"


def _not_available(reason: str = NOT_AVAILABLE) -> str:
    return f"<p class='na'>{_esc(reason)}</p>"


def _is_empty(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, np.ndarray):
        return value.size == 0
    if isinstance(value, Mapping):
        return len(value) == 0 or all(_is_empty(v) for v in value.values())
    if isinstance(value, Sequence) and not isinstance(value, str):
        return len(value) == 0
    return False


def _figure_html(fig: Any, div_id: str) -> str:
    fig.update_layout(template="plotly_white", margin={"l": 60, "r": 20, "t": 30, "b": 50})
    return fig.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config=_PLOTLY_CONFIG
    )


def _k_sort_key(k: object) -> tuple[int, float, str]:
    try:
        return (0, float(str(k).lstrip("@")), "")
    except ValueError:
        return (1, 0.0, str(k))


# --- sections ------------------------------------------------------------------------


def _gate(data: ReportData) -> str:
    if data.promoted is None:
        return _not_available()
    verdict = "PROMOTED" if data.promoted else "NOT PROMOTED"
    css = "ok" if data.promoted else "bad"
    reasons = "".join(f"<li>{_esc(r)}</li>" for r in data.gate_reasons)
    body = f"<p class='verdict {css}'>{verdict}</p>"
    if reasons:
        body += f"<ul class='reasons'>{reasons}</ul>"
    return body


def _metrics_table(metrics: Mapping[str, Mapping[str, Any]] | None) -> str:
    if _is_empty(metrics):
        return _not_available()
    assert metrics is not None
    columns: list[str] = []
    for values in metrics.values():
        for name in values:
            if name not in columns:
                columns.append(name)
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    rows = []
    for method, values in metrics.items():
        cells = "".join(_cell(values.get(c)) for c in columns)
        rows.append(f"<tr><th scope='row'>{_esc(method)}</th>{cells}</tr>")
    return (
        "<div class='wide'><table class='metrics'><thead><tr><th>method</th>"
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _kv_table(values: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th scope='row'>{_esc(k)}</th>"
        + (f"<td>{_esc(v)}</td>" if isinstance(v, str | Mapping) else _cell(v))
        + "</tr>"
        for k, v in values.items()
    )
    return f"<table class='kv'><tbody>{rows}</tbody></table>"


def _data_profile(data: ReportData) -> str:
    if _is_empty(data.profile) and _is_empty(data.chosen_settings):
        return _not_available()
    body = _kv_table(data.profile or {})
    if data.chosen_settings:
        rows = "".join(
            f"<tr><th scope='row'>{_esc(name)}</th><td>{_esc(_fmt(c.get('value')))}</td>"
            f"<td>{_esc(c.get('source'))}</td><td>{_esc(c.get('why'))}</td></tr>"
            for name, c in data.chosen_settings.items()
        )
        body += (
            "<p class='note'>Settings the night derived from the profile (an explicit "
            "RANKING_* setting wins):</p><table class='metrics'><thead><tr><th>setting</th>"
            f"<th>value</th><th>source</th><th>why</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    return body


def _warnings(data: ReportData) -> str:
    if data.warnings is None:
        return _not_available()
    if not data.warnings:
        return "<p class='note'>None: every feature family had data.</p>"
    return "<ul>" + "".join(f"<li>{_esc(w)}</li>" for w in data.warnings) + "</ul>"


def _noted_table(note: str, metrics: Mapping[str, Mapping[str, Any]] | None) -> str:
    body = _metrics_table(metrics)
    return body if _is_empty(metrics) else f"<p class='note'>{note}</p>{body}"


def _metrics(data: ReportData) -> str:
    return _noted_table(
        "Each method's final lists (after candidates and business rules; the fallback list "
        "for users without a personal one) for the users who engaged in the hold-out "
        "window, scored on those engagements over everything they could have been shown. "
        "The gain columns compare with the best baseline (paired bootstrap, 95% CI).",
        data.metrics,
    )


def _metrics_rows(data: ReportData) -> str:
    return _metrics_table(data.metrics_rows)


def _metrics_shown_only(data: ReportData) -> str:
    return _noted_table(
        "Only shown items can be engaged in logged data, so on all candidates a ranker is "
        "also scored on guessing what the logging policy showed. Re-ranking the shown items "
        "alone takes exposure out.",
        data.metrics_shown_only,
    )


def _gains(data: ReportData) -> str:
    if _is_empty(data.gains):
        return _not_available()
    import plotly.graph_objects as go

    assert data.gains is not None
    names = sorted(data.gains, key=lambda m: float(data.gains[m][0]))  # type: ignore[index]
    diff = [float(data.gains[m][0]) for m in names]
    lo = [float(data.gains[m][1]) for m in names]
    hi = [float(data.gains[m][2]) for m in names]
    fig = go.Figure()
    fig.add_scatter(
        x=diff,
        y=names,
        mode="markers",
        marker={"size": 10, "color": ["#137333" if v > 0 else "#a50e0e" for v in lo]},
        error_x={
            "type": "data",
            "symmetric": False,
            "array": [h - d for h, d in zip(hi, diff, strict=True)],
            "arrayminus": [d - lo_ for d, lo_ in zip(diff, lo, strict=True)],
        },
        showlegend=False,
    )
    fig.add_vline(x=0, line_dash="dash", line_color="#777")
    fig.update_layout(height=80 + 40 * len(names), xaxis_title="model − method")
    note = (
        "<p class='note'>Green: the whole interval is above zero. A row named "
        "<code>model_position_debias_…</code> is the same model fitted with the other "
        "position-bias setting: its gain is what the current setting is worth.</p>"
    )
    return note + _figure_html(fig, "fig-gains")


def _segments(data: ReportData) -> str:
    if _is_empty(data.segments):
        return _not_available()
    import plotly.graph_objects as go

    assert data.segments is not None
    metric = data.segment_metric
    segments = list(data.segments)
    methods: list[str] = []
    for by_method in data.segments.values():
        methods.extend(m for m in by_method if m not in methods)
    fig = go.Figure()
    for m in methods:
        fig.add_bar(
            name=m,
            x=[
                f"{s} ({int(data.segments[s].get(m, {}).get('n_queries', 0)):,} q)"
                for s in segments
            ],
            y=[data.segments[s].get(m, {}).get(metric, math.nan) for s in segments],
        )
    fig.update_layout(barmode="group", height=400, yaxis_title=metric)
    note = (
        "<p class='note'>New users had no engagement in the 30 days before the hold-out; "
        "cold items fewer than 10 impressions. An item segment counts only its own items "
        "as relevant.</p>"
    )
    return note + _figure_html(fig, "fig-segments")


def _candidate_recall(data: ReportData) -> str:
    if _is_empty(data.candidate_recall):
        return _not_available()
    assert data.candidate_recall is not None
    by_source = data.candidate_recall.get("by_source", {})
    first = data.candidate_recall.get("first_source", {})
    rows = "".join(
        f"<tr><th scope='row'>{_esc(name)}</th>{_cell(by_source.get(name))}"
        f"{_cell(first.get(name))}</tr>"
        for name in dict.fromkeys([*by_source, *first])
    )
    total = data.candidate_recall.get("all_generators")
    note = (
        "<p class='note'>Share of the hold-out's engaged (user, item) pairs each candidate "
        "source proposed, and the share credited to it when several proposed the same pair "
        f"(the first in merge order). All sources together: {_esc(_fmt(total))}.</p>"
    )
    head = "<tr><th>source</th><th>proposed</th><th>credited</th></tr>"
    return note + f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def _ndcg_by_k(data: ReportData) -> str:
    if _is_empty(data.ndcg_by_k):
        return _not_available()
    import plotly.graph_objects as go

    assert data.ndcg_by_k is not None
    fig = go.Figure()
    for method, by_k in data.ndcg_by_k.items():
        ks = sorted(by_k, key=_k_sort_key)
        fig.add_bar(
            name=str(method),
            x=[f"@{str(k).lstrip('@')}" for k in ks],
            y=[float(by_k[k]) for k in ks],
        )
    fig.update_layout(barmode="group", height=380, yaxis_title="NDCG", xaxis_title="cut-off")
    return _figure_html(fig, "fig-ndcg-by-k")


def _learning_curves(data: ReportData) -> str:
    if _is_empty(data.learning_curves):
        return _not_available()
    import plotly.graph_objects as go

    assert data.learning_curves is not None
    series: dict[str, Sequence[float]] = {}
    for split, values in data.learning_curves.items():
        if isinstance(values, Mapping):  # XGBoost evals_result: split -> metric -> values
            for metric, curve in values.items():
                series[f"{split} {metric}"] = curve
        else:
            series[str(split)] = values
    fig = go.Figure()
    for name, curve in series.items():
        y = np.asarray(curve, dtype=np.float64)
        fig.add_scatter(name=name, x=np.arange(1, len(y) + 1), y=y, mode="lines")
    fig.update_layout(
        height=380, xaxis_title="boosting round", yaxis_title=data.learning_curve_metric
    )
    return _figure_html(fig, "fig-learning-curves")


def _feature_importance(data: ReportData) -> str:
    sources = (("mean |SHAP|", data.shap_importance), ("gain", data.feature_importance))
    panels = {
        title: {str(k): float(v) for k, v in values.items()}
        for title, values in sources
        if values is not None and not _is_empty(values)
    }
    if not panels:
        return _not_available()
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    # One feature order for every panel (the first one's), so a row reads across.
    ranked_by, ranking = next(iter(panels.items()))
    names = sorted(ranking, key=lambda k: (-ranking[k], k))
    shown = names[: max(1, data.max_features)][::-1]  # largest at the top
    fig = make_subplots(rows=1, cols=len(panels), shared_yaxes=True)
    for col, (title, values) in enumerate(reversed(panels.items()), start=1):
        x = [values.get(name, 0.0) for name in shown]  # gain omits features never split on
        fig.add_trace(go.Bar(x=x, y=shown, orientation="h", name=title), row=1, col=col)
        fig.update_xaxes(title_text=title, row=1, col=col)
    fig.update_layout(height=max(300, 22 * len(shown) + 80), showlegend=False)
    note = ""
    if len(names) > len(shown):
        note = f"<p class='note'>Top {len(shown)} of {len(names)} features by {ranked_by}.</p>"
    return note + _figure_html(fig, "fig-feature-importance")


def _score_distribution(data: ReportData) -> str:
    if data.score_distribution is None:
        return _not_available()
    scores = np.asarray(data.score_distribution, dtype=np.float64).ravel()
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return _not_available()
    import plotly.graph_objects as go

    counts, edges = np.histogram(finite, bins=_HIST_BINS)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(go.Bar(x=centres, y=counts, width=np.diff(edges), marker_line_width=0))
    fig.update_layout(height=340, xaxis_title="score", yaxis_title="count", bargap=0)
    p = np.percentile(finite, [1, 50, 99])
    summary = (
        f"{finite.size:,} scores; mean {finite.mean():.4f}, "
        f"p1 {p[0]:.4f}, median {p[1]:.4f}, p99 {p[2]:.4f}"
    )
    if finite.size < scores.size:
        summary += f"; {scores.size - finite.size:,} non-finite left out"
    return f"<p class='note'>{_esc(summary)}.</p>" + _figure_html(fig, "fig-score-distribution")


def _list_stats(data: ReportData) -> str:
    if _is_empty(data.list_stats):
        return _not_available()
    assert data.list_stats is not None
    return _kv_table(data.list_stats)


def _metric_history(data: ReportData) -> str:
    if _is_empty(data.metric_history):
        return _not_available()
    import plotly.graph_objects as go

    assert data.metric_history is not None
    by_ds: dict[str, tuple[dict[str, float], bool | None]] = {}
    for entry in data.metric_history:
        if "ds" not in entry:
            raise ValueError(f"metric history entry without 'ds': {dict(entry)!r}")
        values = entry.get("metrics")
        if not isinstance(values, Mapping):
            values = {k: v for k, v in entry.items() if k not in ("ds", "promoted")}
        numeric = {
            str(k): float(v)
            for k, v in values.items()
            if isinstance(v, int | float | np.number) and not isinstance(v, bool)
        }
        by_ds[str(entry["ds"])] = (numeric, entry.get("promoted"))  # a rerun replaces its day
    days = sorted(by_ds)
    names: list[str] = []
    for values, _ in by_ds.values():
        names.extend(n for n in values if n not in names)
    if not names:
        return _not_available()
    fig = go.Figure()
    for name in names:
        fig.add_scatter(
            name=name,
            x=days,
            y=[by_ds[ds][0].get(name, math.nan) for ds in days],
            mode="lines+markers",
        )
    for verdict, label, symbol, colour in (
        (True, "promoted", "circle-open", "#137333"),
        (False, "not promoted", "x", "#a50e0e"),
    ):
        marked = [ds for ds in days if by_ds[ds][1] is verdict and "model" in by_ds[ds][0]]
        if marked:
            fig.add_scatter(
                name=label,
                x=marked,
                y=[by_ds[ds][0]["model"] for ds in marked],
                mode="markers",
                marker={"symbol": symbol, "size": 14, "color": colour, "line": {"width": 2}},
            )
    fig.update_layout(height=380, xaxis_title="run date", xaxis_type="category")
    return _figure_html(fig, "fig-metric-history")


def _monitoring(data: ReportData) -> str:
    if _is_empty(data.monitoring):
        return _not_available()
    import pandas as pd
    import plotly.graph_objects as go

    frame = pd.DataFrame(list(data.monitoring or []))
    days = sorted(frame["ds"].unique())
    tonight = frame[frame["ds"] == (str(data.ds) if data.ds else days[-1])]
    drift = tonight[tonight["metric"] == "psi"].sort_values("value", ascending=False).head(10)
    parts = []
    if len(drift):
        rows = "".join(
            f"<tr><td>{_esc(r.name)}</td><td class='num'>{r.value:.3f}</td>"
            f"<td>{_esc(r.status)}</td></tr>"
            for r in drift.itertuples()
        )
        parts.append(
            "<p class='note'>Population stability index of tonight's sample against the "
            "nights before it (bins on the reference's deciles).</p><table><thead><tr>"
            f"<th>feature</th><th>PSI</th><th>status</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    else:
        parts.append("<p class='na'>No earlier night to compare tonight's sample with.</p>")
    psi = frame[frame["metric"] == "psi"]
    watched = psi.sort_values("value", ascending=False)["name"].drop_duplicates().head(5)
    charts = [
        ("psi", list(watched), "largest feature PSIs", "PSI"),
        ("night", sorted(frame.loc[frame["metric"] == "night", "name"].unique()), "night", ""),
        ("age_days", ["live_lists", "champion"], "ages", "days"),
    ]
    for metric, names, title, axis in charts:
        fig = go.Figure()
        chosen = frame[(frame["metric"] == metric) & frame["name"].isin(names)]
        for name, rows in chosen.groupby("name"):
            by_day = rows.groupby("ds")["value"].last()
            fig.add_scatter(name=str(name), x=days, y=[by_day.get(d, math.nan) for d in days],
                            mode="lines+markers")  # fmt: skip
        if metric == "psi":
            for level, value in (data.monitoring_thresholds or {}).items():
                fig.add_hline(y=value, line_dash="dash", annotation_text=level)
        if fig.data:
            fig.update_layout(height=320, title=title, yaxis_title=axis, xaxis_type="category")
            parts.append(_figure_html(fig, f"fig-monitoring-{metric}"))
    return "".join(parts)


_SECTIONS: dict[str, Callable[[ReportData], str]] = {
    "gate": _gate,
    "data_profile": _data_profile,
    "warnings": _warnings,
    "metrics": _metrics,
    "metrics_rows": _metrics_rows,
    "metrics_shown_only": _metrics_shown_only,
    "gains": _gains,
    "ndcg_by_k": _ndcg_by_k,
    "segments": _segments,
    "candidate_recall": _candidate_recall,
    "learning_curves": _learning_curves,
    "feature_importance": _feature_importance,
    "score_distribution": _score_distribution,
    "list_stats": _list_stats,
    "metric_history": _metric_history,
    "monitoring": _monitoring,
}

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #222; }
h1 { margin-bottom: .25rem; }
section { margin: 2rem 0; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .25rem; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .3rem .6rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
thead th { background: #f5f5f5; }
.meta th { background: #f5f5f5; }
.na { color: #777; font-style: italic; }
.error { color: #a00; }
.note { color: #555; font-size: .9rem; }
.wide { overflow-x: auto; }
.verdict { font-weight: bold; font-size: 1.2rem; }
.verdict.ok { color: #137333; }
.verdict.bad { color: #a50e0e; }
"""


def build_html(data: ReportData, *, strict: bool = False) -> str:
    """The report as one HTML string.

    A section whose data cannot be drawn shows an error note (and is logged)
    instead of failing the whole report; ``strict=True`` raises instead.
    """
    from plotly.offline import get_plotlyjs

    meta_rows = [
        ("Logical date", data.ds),
        ("Run id", data.run_id),
        ("Model version", data.model_version),
        ("Generated at", data.generated_at),
    ]
    meta = "".join(
        f"<tr><th scope='row'>{_esc(k)}</th><td>{_esc(v)}</td></tr>"
        for k, v in meta_rows
        if v is not None
    )
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_esc(data.title)}</title>",
        f"<style>{_CSS}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script>",
        "</head><body>",
        f"<h1>{_esc(data.title)}</h1>",
    ]
    if meta:
        parts.append(f"<table class='meta'><tbody>{meta}</tbody></table>")
    for key, render in _SECTIONS.items():
        try:
            body = render(data)
        except Exception as exc:
            if strict:
                raise
            log.exception("report section %r could not be rendered", key)
            body = f"<p class='error'>Could not be rendered: {_esc(repr(exc))}</p>"
        parts.append(f"<section id='{key}'><h2>{_esc(SECTION_TITLES[key])}</h2>{body}</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_report(data: ReportData, path: Path, *, strict: bool = False) -> Path:
    """Write the report to ``path`` atomically (temp file beside it, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = build_html(data, strict=strict)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a report is meant to be read
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    log.info("report written to %s (%d bytes)", path, len(text.encode("utf-8")))
    return path
