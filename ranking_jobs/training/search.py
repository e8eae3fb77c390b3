"""Optional budgeted hyperparameter search (Optuna TPE) on the early-stopping day.

Each trial trains with early stopping and is scored by its best validation
NDCG; the hold-out day stays untouched, so the evaluation of the chosen model
is still honest. Seeded: the same data and budget give the same trials.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from ranking_jobs.model import fit_dmatrices, ranking_dmatrix, vocabulary
from ranking_jobs.settings import Settings

log = logging.getLogger(__name__)


def suggest(trial: Any) -> dict[str, Any]:
    """The search space: tree shape, learning rate, regularisation, pair sampling."""
    return {
        "max_depth": trial.suggest_int("max_depth", 3, 10),
        "eta": trial.suggest_float("eta", 0.02, 0.3, log=True),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.1, 100.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "lambda": trial.suggest_float("lambda", 1e-3, 10.0, log=True),
        "lambdarank_num_pair_per_sample": trial.suggest_int(
            "lambdarank_num_pair_per_sample", 1, 32
        ),
    }


def search(
    settings: Settings, train: pd.DataFrame, valid: pd.DataFrame
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Best parameter overrides and every trial (number, params, value, rounds)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    vocab = vocabulary(settings, train)
    dtrain = ranking_dmatrix(train, vocab, settings.training.position_debias)
    dvalid = ranking_dmatrix(valid, vocab)
    metric = f"ndcg@{settings.evaluation.k}"

    def objective(trial: optuna.Trial) -> float:
        booster, history = fit_dmatrices(settings, dtrain, dvalid, suggest(trial))
        rounds = booster.num_boosted_rounds()
        trial.set_user_attr("rounds", rounds)
        value = float(history["valid"][metric][rounds - 1])
        log.info("search trial %d: valid %s %.4f in %d rounds", trial.number, metric, value, rounds)
        return value

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=settings.generator.seed)
    )
    study.optimize(
        objective,
        n_trials=settings.training.search_trials,
        timeout=settings.training.search_timeout_s,
    )
    trials = [
        {
            "number": t.number,
            "params": t.params,
            "value": t.value,
            "rounds": t.user_attrs.get("rounds"),
            "seconds": t.duration.total_seconds() if t.duration else None,
        }
        for t in study.trials
    ]
    log.info(
        "search: %d trials, best valid %s %.4f with %s",
        len(trials),
        metric,
        study.best_value,
        study.best_params,
    )
    return dict(study.best_params), trials
