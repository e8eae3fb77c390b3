"""Training-set validation speed: the feature rules on each feature's extremes (the
suite's way) against the same rules on every row (the reference), in one run.

    python -m bench.bench_validation [--rows 300000] [--features 150]

Builds a frame shaped like a training set: ``--rows`` rows, ``--features`` float
features (a tenth of their values missing) plus the keys. Both ways run the same
rules through the project's Great Expectations session: "holds a value" and
"finite" for every feature; the reference on the rows, the suite on
``FeatureExtremes``. Both must agree; one feature is made entirely null and one
infinite, so both ways must also fail on the same two rules. Figures are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import pyarrow as pa

from ranking_jobs.validation.engine import GxSession
from ranking_jobs.validation.spec import Rule, SuiteSpec, between
from ranking_jobs.validation.training import FLOAT_MAX, FeatureExtremes, features_spec


def frame(rows: int, features: int, seed: int = 0) -> pd.DataFrame:
    """Keys and float features; ``f0`` entirely null and ``f1`` holding one infinity."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, features)).astype(np.float32)
    values[rng.random(values.shape) < 0.1] = np.nan
    df = pd.DataFrame(values, columns=[f"f{i}" for i in range(features)])
    df["f0"] = np.float32(np.nan)
    df.loc[rows // 2, "f1"] = np.float32(np.inf)
    df["user_id"] = rng.integers(0, rows // 20 + 1, rows)
    df["item_id"] = rng.integers(0, 50_000, rows)
    return df


def row_rules(features: list[str]) -> SuiteSpec:
    """The reference: the suite's feature rules on every row, as it ran them before."""
    rules: list[Rule] = []
    for column in features:
        rules.append(
            Rule(
                "expect_column_proportion_of_non_null_values_to_be_between",
                {"column": column, "min_value": 0, "strict_min": True},
                f"feature {column} must not be entirely null",
            )
        )
        rules.append(between(column, "finite", min_value=-FLOAT_MAX, max_value=FLOAT_MAX))
    return SuiteSpec("bench_rows", rules)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--features", type=int, default=150)
    args = parser.parse_args(argv)
    df = frame(args.rows, args.features)
    batches = pa.Table.from_pandas(df, preserve_index=False).to_batches(max_chunksize=250_000)
    features = [f"f{i}" for i in range(args.features)]
    session = GxSession()
    session.check(df.head(10), features_spec(features[:2]), "warm-up")  # GX's first-use cost

    started = time.perf_counter()
    gathered = FeatureExtremes(features)
    for batch in batches:
        gathered.add(batch)
    extremes = gathered.frame()
    ours = session.check(extremes, features_spec(features), "extremes")
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    reference = session.check(df, row_rules(features), "rows")
    reference_s = time.perf_counter() - started

    def failed(summary: object) -> set[str]:
        return {
            f"{f.column}:{'null' if 'null' in f.expectation else 'finite'}"
            for f in summary.failures  # type: ignore[attr-defined]
        }

    rules = 2 * args.features
    print(f"{args.rows:,} rows x {args.features} features, {rules} rules each way")
    print(f"extremes (the suite): {ours_s:8.1f} s  failed {sorted(failed(ours))}")
    print(f"every row (reference): {reference_s:7.1f} s  failed {sorted(failed(reference))}")
    print(
        f"speed-up {reference_s / ours_s:.1f}x; same verdict: {failed(ours) == failed(reference)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
