"""The quality bench's own logic: default settings only, the future hold-out, where a
failed night stopped, and the MovieLens and Complete Journey files it imports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from bench.bench_quality import (
    MOVIELENS_GENRES,
    Lake,
    completejourney_files,
    failed_stage,
    future_days,
    movielens_files,
    without_settings,
)


def test_children_see_only_the_bench_settings() -> None:
    env = without_settings({"PATH": "/bin", "RANKING_TRAIN_DAYS": "8", "RANKING_SCALE": "x"})
    assert env == {"PATH": "/bin"}
    lake = Lake("small", Path("/r/small"))
    assert lake.settings_env() == {
        "RANKING_DATA_ROOT": "/r/small/lake",
        "RANKING_STATE_DIR": "/r/small/var",
        "RANKING_TASK_RETRIES": "0",
        "RANKING_SCALE": "small",
    }
    assert "RANKING_SCALE" not in Lake("uci", Path("/r/uci")).settings_env()


def test_future_days_start_after_the_cut() -> None:
    days = future_days(dt.date(2026, 1, 31), 7)
    assert days[0] == dt.date(2026, 2, 1) and days[-1] == dt.date(2026, 2, 7)
    assert len(days) == 7


def test_failed_stage_is_the_last_unfinished_one() -> None:
    log = (
        "stage validate_raw for 2026-01-31 (run manual__2026-01-31) starting\n"
        "stage validate_raw done in 1.0s (summary x)\n"
        "stage train_model for 2026-01-31 (run manual__2026-01-31) starting\n"
        "Traceback ...\n"
    )
    assert failed_stage(log) == "train_model"
    assert failed_stage("stage a for d (run r) starting\nstage a done in 1s") is None


def test_movielens_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "u.data").write_text("1\t10\t5\t881250949\n2\t11\t1\t891717742\n")
    genres = "|".join(["0", "0", "1"] + ["0"] * (len(MOVIELENS_GENRES) - 3))
    (src / "u.item").write_text(
        f"10|A (1995)|01-Jan-1995||url|{genres}\n"
        f"11|B (1996)|01-Jan-1996||url|1|{'|'.join(['0'] * (len(MOVIELENS_GENRES) - 1))}\n",
        encoding="latin-1",
    )
    log, items, end = movielens_files(src, tmp_path / "out", "weight")
    assert end == dt.date(1998, 4, 4)
    assert pd.read_csv(log)["weight"].tolist() == [5, 1]
    assert pd.read_csv(items)["category"].tolist() == ["adventure", "unknown"]
    log, _, _ = movielens_files(src, tmp_path / "out", "purchases")
    assert set(pd.read_csv(log)["event_type"]) == {"purchase"}


def test_completejourney_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    pd.DataFrame(
        {
            "household_id": ["900", "901", "900"],
            "product_id": ["5", "5", "6"],
            "quantity": [1, 3, 1],
            "transaction_timestamp": pd.to_datetime(
                ["2017-01-01 10:00", "2017-03-02 23:59", "2017-02-01 08:00"]
            ),
        }
    ).to_parquet(src / "transactions.parquet")
    pd.DataFrame(
        {
            "product_id": ["5", "6"],
            "manufacturer_id": [69, None],
            "department": ["GROCERY", "PRODUCE"],
            "product_category": ["SOUP", "FRUIT"],
            "product_type": ["CANNED", "APPLES"],
        }
    ).to_parquet(src / "products.parquet")
    log, items, end = completejourney_files(src, tmp_path / "out")
    assert end == dt.date(2017, 3, 2)
    got = pd.read_parquet(log)
    assert got["user_id"].tolist() == [900, 901, 900]  # every basket line, once
    assert set(got["event_type"]) == {"purchase"}
    assert got["timestamp"].iloc[2] == pd.Timestamp("2017-02-01 08:00")
    products = pd.read_parquet(items).set_index("item_id")
    assert products.loc[5, "category"] == "SOUP" and products.loc[6, "subcategory"] == "APPLES"
    assert products.loc[5, "brand"] == "69" and pd.isna(products.loc[6, "brand"])
