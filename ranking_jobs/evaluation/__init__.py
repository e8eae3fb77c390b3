"""Evaluation stage: the new model against strong baselines and the champion, then the gate.

The gate judges what matters to a user: the final lists a surface would receive,
made from the snapshot of the hold-out window's eve for the users who engaged in the
window, scored on those engagements over everything they could have been shown
(``evaluation.lists``). Every baseline goes through the same candidates-free list
path and business rules, so the model must beat what a team would otherwise ship.

Row-level diagnostics follow on the hold-out rows of the training set: metrics on
every candidate and on the shown items alone (where impressions exist), per segment,
the candidate generators' recall, and what the position-bias correction is worth.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from ranking_jobs import baselines as list_baselines
from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.calendar import Window, calendar_of
from ranking_jobs.candidates import SOURCE_BIT, inputs
from ranking_jobs.context import RunContext
from ranking_jobs.evaluation import baselines
from ranking_jobs.evaluation import lists as final_lists
from ranking_jobs.evaluation.metrics import (
    bootstrap_diff_ci,
    catalogue_coverage,
    novelty,
    summarise,
    top_k_lists,
)
from ranking_jobs.model import SHOWN_ONLY, of_splits, training_rows

log = logging.getLogger(__name__)

KS = (5, 10, 20)
COLD_ITEM_IMPRESSIONS = 10
ENGAGEMENT_30D = [f"{e}_30d" for e in ("clicks", "likes", "saves", "bag_adds", "purchases")]


@dataclass
class GateDecision:
    promoted: bool
    reasons: list[str] = field(default_factory=list)


def holdout(table: pd.DataFrame) -> pd.DataFrame:
    """Test rows of queries with at least one engaged item (others carry no signal)."""
    test = table[table["split"] == "test"].copy()
    test["qid"] = test.groupby(["as_of", "user_id"], sort=False).ngroup()
    test["rel"] = C.engagement_grade(test["label"].to_numpy())
    engaged = test.groupby("qid")["rel"].transform("max") > 0
    return test[engaged].reset_index(drop=True)


def baseline_scores(ctx: RunContext, test: pd.DataFrame, window: Window) -> dict[str, np.ndarray]:
    """Every row-level ranker on the hold-out rows, from the snapshot of the window's eve."""
    settings = ctx.settings
    qid = test["qid"].to_numpy()
    recent = inputs.interactions_until(settings, window.snapshot, inputs.RECENT_DAYS)
    return {
        "random": baselines.random_scores(test, settings.generator.seed),
        "popularity": baselines.popularity_scores(test),
        "category_popular": baselines.category_popular_scores(test, qid),
        "covisitation": baselines.covisitation_scores(
            test, recent, inputs.covisitation_table(settings, window.snapshot)
        ),
    }


def segment_metrics(test: pd.DataFrame, scores: dict[str, np.ndarray]) -> dict[str, Any]:
    """Metrics per user segment (queries) and per item segment (relevance restricted).

    New users had no engagement in the 30 days before the as-of time; cold items
    had fewer than ``COLD_ITEM_IMPRESSIONS`` impressions in those 30 days. An item
    segment counts only its own items as relevant, so it says how well a ranker
    surfaces the engaged items of that kind.
    """
    qid, rel = test["qid"].to_numpy(), test["rel"].to_numpy()
    new_user = test["user_days_since_active"].isna().to_numpy()
    cold_item = (test["impressions_30d"].fillna(0) < COLD_ITEM_IMPRESSIONS).to_numpy()
    subsets = {}
    for name, mask in (("new_users", new_user), ("returning_users", ~new_user)):
        subsets[name] = (mask, rel)
    for name, mask in (("cold_items", cold_item), ("established_items", ~cold_item)):
        seg_rel = np.where(mask, rel, 0)
        subsets[name] = (pd.Series(seg_rel).groupby(qid).transform("max").to_numpy() > 0, seg_rel)
    return {
        name: {m: summarise(qid[keep], r[keep], s[keep], ks=KS) for m, s in scores.items()}
        for name, (keep, r) in subsets.items()
        if keep.any()
    }


def list_metrics(test: pd.DataFrame, score: np.ndarray, k: int) -> dict[str, float]:
    """Catalogue coverage and novelty of the top-k lists a ranker makes from the hold-out rows.

    Coverage is over the items present in the hold-out; novelty uses the items'
    30-day engagement counts (clicks and stronger) as popularity.
    """
    lists = top_k_lists(test["qid"].to_numpy(), test["item_id"].to_numpy(), score, k)
    items = test.drop_duplicates("item_id").set_index("item_id")
    engaged = sum(items[c] for c in ENGAGEMENT_30D).astype("float64")
    return {
        f"coverage@{k}": catalogue_coverage(lists, len(items)),
        f"novelty@{k}": novelty(lists, engaged),
    }


def candidate_recall(test: pd.DataFrame) -> dict[str, Any]:
    """Share of the hold-out's engaged (user, item) pairs each generator proposed.

    ``by_source``: proposed by that source at all (sources overlap); ``first_source``:
    credited to the first in merge order (these add up to ``all_generators``).
    """
    engaged = test[test["rel"] > 0]
    if engaged.empty or "source" not in engaged:
        return {}
    first = engaged["source"].value_counts(normalize=True)
    out: dict[str, Any] = {
        "first_source": {str(k): float(v) for k, v in first.items() if k != SHOWN_ONLY},
        "all_generators": float((engaged["source"] != SHOWN_ONLY).mean()),
    }
    if "sources" in engaged:
        bits = engaged["sources"].to_numpy(dtype=np.int64)
        out["by_source"] = {
            name: float(((bits & bit) > 0).mean()) for name, bit in SOURCE_BIT.items()
        }
    return out


def position_ablation(ctx: RunContext, overrides: dict[str, Any]) -> tuple[str, Any]:
    """The same model (same searched parameters) fitted with the other ``position_debias``
    value. Fitted before the hold-out is read, so the two are never held together."""
    from ranking_jobs.model import fit

    other = not ctx.settings.training.position_debias
    settings = ctx.settings.replace(position_debias=other)
    fitting = of_splits("train", "valid")
    table = lake.read_partition(settings, C.TRAINING, ctx.ds, where=fitting).to_pandas()
    train, valid = (training_rows(settings, table, split) for split in ("train", "valid"))
    del table
    booster, _ = fit(settings, train, valid, overrides)
    return f"model_position_debias_{'on' if other else 'off'}", booster


def decide(
    model_q: np.ndarray,
    baseline_q: np.ndarray,
    champion_q: np.ndarray | None,
    *,
    min_gain: float,
    tolerance: float,
    seed: int,
    ds: str | None = None,
    champion_ds: str | None = None,
) -> tuple[GateDecision, dict[str, Any]]:
    """Promote only if the gain over the best baseline is surely positive and the
    model is not worse than the champion beyond the tolerance, and never from a
    backfill: a model for day ``ds`` is not promoted over a champion trained for a
    later day ``champion_ds``, whose training set may hold ``ds``'s labels."""
    diff, lo, hi = bootstrap_diff_ci(model_q, baseline_q, seed=seed)
    stats: dict[str, Any] = {"gain_vs_baseline": [diff, lo, hi]}
    decision = GateDecision(promoted=True)
    if lo > min_gain:
        decision.reasons.append(
            f"gain over best baseline {diff:+.4f} (95% CI {lo:+.4f}..{hi:+.4f})"
        )
    else:
        decision.promoted = False
        decision.reasons.append(
            f"gain over best baseline {diff:+.4f} has CI lower bound {lo:+.4f} <= {min_gain}"
        )
    if champion_q is not None:
        cdiff, clo, chi = bootstrap_diff_ci(model_q, champion_q, seed=seed)
        stats["gain_vs_champion"] = [cdiff, clo, chi]
        if cdiff < -tolerance:
            decision.promoted = False
            decision.reasons.append(f"worse than champion by {-cdiff:.4f} > tolerance {tolerance}")
        else:
            decision.reasons.append(f"vs champion {cdiff:+.4f} (tolerance {tolerance})")
    if ds is not None and champion_ds is not None and champion_ds > ds:
        decision.promoted = False
        decision.reasons.append(
            f"backfill of {ds}: the champion was trained for {champion_ds}; "
            "a backfill never moves it"
        )
    return decision, stats


def row_diagnostics(ctx: RunContext, window: Window, boosters: dict[str, Any]) -> dict[str, Any]:
    """The model and the row-level baselines on the hold-out rows of the training set:
    metrics on every candidate and on the shown items, per segment, candidate recall,
    and the model fitted with the other position-debias setting."""
    from ranking_jobs.model import predict
    from ranking_jobs.summaries import read_summary

    settings = ctx.settings
    boosters = dict(boosters)
    if settings.training.position_bias_ablation:
        searched = ((read_summary(ctx, "train_model") or {}).get("search") or {}).get("best")
        name, ablated = position_ablation(ctx, searched or {})
        boosters[name] = ablated
    test = holdout(
        lake.read_partition(settings, C.TRAINING, ctx.ds, where=of_splits("test")).to_pandas()
    )
    if test.empty:
        return {}
    scores = baseline_scores(ctx, test, window)
    for name, booster in boosters.items():
        scores[name] = predict(booster, test)
    qid, rel, k = test["qid"].to_numpy(), test["rel"].to_numpy(), settings.evaluation.k
    shown = test["shown_position"].notna().to_numpy()
    return {
        "metrics_rows": {
            m: {**summarise(qid, rel, s, ks=KS), **list_metrics(test, s, k)}
            for m, s in scores.items()
        },
        "metrics_shown_only": (
            {m: summarise(qid[shown], rel[shown], s[shown], ks=KS) for m, s in scores.items()}
            if shown.any()
            else {}
        ),
        "segments": segment_metrics(test, scores),
        "candidate_recall": candidate_recall(test),
        "score_sample": np.quantile(scores["model"], np.linspace(0, 1, 51)).tolist(),
    }


def evaluate_model(ctx: RunContext) -> dict[str, Any]:
    from ranking_jobs import registry
    from ranking_jobs.feast_store import snapshot_views
    from ranking_jobs.lists import list_inputs, user_lists
    from ranking_jobs.summaries import read_summary

    settings = ctx.settings
    trained = read_summary(ctx, "train_model")
    if trained is None:
        raise FileNotFoundError(f"no trained model recorded for {ctx.ds_str}: run train_model")
    candidate = registry.ModelRef(
        settings.mlflow.registered_model, str(trained["model_version"]), trained["mlflow_run_id"]
    )
    window = calendar_of(ctx).holdout
    boosters = {"model": registry.load_booster(settings, candidate)}
    champ = registry.champion(settings)
    if champ is not None and champ.version != candidate.version:
        boosters["champion"] = registry.load_booster(settings, champ)

    src = list_baselines.load_inputs(settings, window.snapshot)
    model_src = list_inputs(settings, window.snapshot, snapshot_views(settings))
    makers = {
        name: partial(user_lists, settings, booster, model_src, as_of=window.as_of)
        for name, booster in boosters.items()
    }
    compared = final_lists.compare(settings, window.snapshot, list(window.days), makers, src)
    names = list_baselines.names(src)
    k = settings.evaluation.k
    metric = f"ndcg@{k}"
    best = compared.best(names, metric)
    per_user = {m: v[metric] for m, v in compared.per_user.items()}
    decision, stats = decide(
        per_user["model"],
        per_user[best],
        per_user.get("champion"),
        min_gain=settings.evaluation.min_gain_over_baseline,
        tolerance=settings.evaluation.champion_tolerance,
        seed=settings.generator.seed,
        ds=ctx.ds_str,
        champion_ds=registry.trained_for(settings, champ) if champ is not None else None,
    )
    if decision.promoted:
        registry.promote(settings, candidate, decision.reasons)
        publisher = candidate.label
    else:
        registry.record_refusal(settings, candidate, decision.reasons)
        if champ is None:
            publisher = f"baseline:{best}"
            decision.reasons.append(
                f"no model has passed the gate yet: the night publishes the lists of the "
                f"best baseline, {best}, until one does"
            )
        else:
            publisher = champ.label
            decision.reasons.append(f"{champ.label} stays champion and publishes")
        log.warning("model %s refused: %s", candidate.label, "; ".join(decision.reasons))
    for m in per_user:
        log.info("hold-out lists ndcg@%d %-18s %.4f", k, m, per_user[m].mean())
    champion_now = candidate if decision.promoted else champ
    return {
        "holdout": [window.first.isoformat(), window.last.isoformat()],
        "snapshot": window.snapshot.isoformat(),
        "users": len(compared.users),
        "users_with_personal_list": int(compared.personal.sum()),
        "k": k,
        "metrics": compared.summary(best, metric, settings.generator.seed),
        "baselines": names,
        "best_baseline": best,
        "fallback": compared.fallback,
        "gain_vs": {
            m: list(bootstrap_diff_ci(per_user["model"], v, seed=settings.generator.seed))
            for m, v in per_user.items()
            if m != "model"
        },
        "promoted": decision.promoted,
        "reasons": decision.reasons,
        "gate_stats": stats,
        "candidate": candidate.label,
        "champion": champion_now.label if champion_now else None,
        "publisher": publisher,
        **row_diagnostics(ctx, window, boosters),
    }
