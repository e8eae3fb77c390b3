"""Evaluation stage: the new model against baselines and the champion, then the gate.

All methods score the same hold-out queries (the last label day, after every
day the model trained or stopped on). Relevance for evaluation is engagement:
a click or more; a bare impression earns nothing, so a ranker is not rewarded
for imitating the logging policy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.evaluation.metrics import bootstrap_diff_ci, ndcg_at_k, summarise
from ranking_jobs.precompute.candidates import popularity

log = logging.getLogger(__name__)

ENGAGED = C.LABEL_GRADES["click"]
KS = (5, 10, 20)


class GateRefused(RuntimeError):
    """The new model was refused and there is no champion to publish with."""


@dataclass
class GateDecision:
    promoted: bool
    reasons: list[str] = field(default_factory=list)


def eval_labels(label: np.ndarray) -> np.ndarray:
    """Grades shifted so that engagement starts at 1 and shown-only counts 0."""
    return np.clip(label - (ENGAGED - 1), 0, None)


def holdout(table: pd.DataFrame) -> pd.DataFrame:
    """Test rows of queries with at least one engaged item (others carry no signal)."""
    test = table[table["split"] == "test"].copy()
    test["qid"] = test.groupby(["as_of", "user_id"], sort=False).ngroup()
    test["rel"] = eval_labels(test["label"].to_numpy())
    engaged = test.groupby("qid")["rel"].transform("max") > 0
    return test[engaged].reset_index(drop=True)


def baseline_scores(test: pd.DataFrame, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "random": rng.random(len(test)),
        "popularity": popularity(test).to_numpy(),
    }


def decide(
    model_q: np.ndarray,
    baseline_q: np.ndarray,
    champion_q: np.ndarray | None,
    *,
    min_gain: float,
    tolerance: float,
    seed: int,
) -> tuple[GateDecision, dict[str, Any]]:
    """Promote only if the gain over the best baseline is surely positive and the
    model is not worse than the champion beyond the tolerance."""
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
    return decision, stats


def evaluate_model(ctx: RunContext) -> dict[str, Any]:
    from ranking_jobs import registry
    from ranking_jobs.stages import read_summary
    from ranking_jobs.training.model import predict

    settings = ctx.settings
    trained = read_summary(ctx, "train_model")
    if trained is None:
        raise FileNotFoundError(f"no trained model recorded for {ctx.ds_str}: run train_model")
    candidate = registry.ModelRef(
        settings.registered_model, str(trained["model_version"]), trained["mlflow_run_id"]
    )
    test = holdout(lake.read_partition(settings, C.TRAINING, ctx.ds).to_pandas())
    if test.empty:
        raise ValueError(f"hold-out day {ctx.ds_str} has no query with engagement to score")

    scores = baseline_scores(test, settings.seed)
    scores["model"] = predict(registry.load_booster(settings, candidate), test)
    champ = registry.champion(settings)
    if champ is not None and champ.version != candidate.version:
        scores["champion"] = predict(registry.load_booster(settings, champ), test)

    qid, rel, k = test["qid"].to_numpy(), test["rel"].to_numpy(), settings.eval_k
    per_q = {m: ndcg_at_k(qid, rel, s, k) for m, s in scores.items()}
    table = {m: summarise(qid, rel, s, ks=KS) for m, s in scores.items()}
    best_baseline = max(("random", "popularity"), key=lambda m: per_q[m].mean())
    decision, stats = decide(
        per_q["model"],
        per_q[best_baseline],
        per_q.get("champion"),
        min_gain=settings.min_gain_over_baseline,
        tolerance=settings.champion_tolerance,
        seed=settings.seed,
    )
    if decision.promoted:
        registry.promote(settings, candidate, decision.reasons)
    else:
        registry.record_refusal(settings, candidate, decision.reasons)
        if champ is None:
            raise GateRefused(
                f"model {candidate.label} refused ({'; '.join(decision.reasons)}) and no "
                f"champion exists: nothing will be published for {ctx.ds_str}"
            )
        log.warning(
            "model %s refused, %s stays champion: %s",
            candidate.label,
            champ.label,
            "; ".join(decision.reasons),
        )
    for m in scores:
        log.info("hold-out ndcg@%d %-10s %.4f", k, m, per_q[m].mean())
    return {
        "queries": int(test["qid"].nunique()),
        "rows": len(test),
        "k": k,
        "metrics": table,
        "best_baseline": best_baseline,
        "promoted": decision.promoted,
        "reasons": decision.reasons,
        "gate_stats": stats,
        "candidate": candidate.label,
        "champion": (candidate if decision.promoted else champ).label,  # type: ignore[union-attr]
        "score_sample": np.quantile(scores["model"], np.linspace(0, 1, 51)).tolist(),
    }
