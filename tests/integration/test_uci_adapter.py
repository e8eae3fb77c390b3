"""The UCI Online Retail adapter on the real file, for one month (January 2011).

The file lives in the shared data sets folder (``../shared/datasets`` beside the
repository, or ``$RANKING_SHARED_DATASETS``); it is never copied into the
repository, and this test is skipped, naming the path, when it is absent.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import pytest

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.data.adapters import UCI_NON_PRODUCT_CODES, load_uci_online_retail
from ranking_jobs.settings import Settings

DATASETS = Path(
    os.environ.get(
        "RANKING_SHARED_DATASETS",
        Path(__file__).resolve().parents[2].parent / "shared" / "datasets",
    )
)
UCI_FILE = DATASETS / "uci-online-retail" / "online_retail.parquet"
START, END = dt.date(2011, 1, 1), dt.date(2011, 1, 31)

# From ../shared/datasets/README.md (the whole file).
README = {"lines": 541_909, "customers": 4_372, "stock_codes": 4_070, "invoices": 25_900}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict]:
    if not UCI_FILE.is_file():
        pytest.skip(
            f"UCI Online Retail file not found at {UCI_FILE} "
            "(set RANKING_SHARED_DATASETS to the shared datasets folder)"
        )
    root = tmp_path_factory.mktemp("uci")
    settings = Settings(data_root=str(root / "lake"), state_dir=root / "var")
    summary = load_uci_online_retail(
        RunContext.create(END, settings), UCI_FILE, start=START, end=END
    )
    return settings, summary


def test_file_counts_match_the_readme(imported: tuple[Settings, dict]) -> None:
    _, summary = imported
    file = summary["file"]
    assert {k: file[k] for k in README} == README
    assert (file["first_day"], file["last_day"]) == ("2010-12-01", "2011-12-09")
    assert summary["recommended_settings"] == {"exclude_purchased": False}


def test_month_counts_agree_with_an_independent_count(imported: tuple[Settings, dict]) -> None:
    settings, summary = imported
    raw = pd.read_parquet(UCI_FILE)
    day = raw["InvoiceDate"].dt.date
    month = raw[(day >= START) & (day <= END)]
    cancel = month["InvoiceNo"].str.startswith("C")
    no_customer = month["CustomerID"].isna()
    bad_qty = month["Quantity"] <= 0
    bad_price = month["UnitPrice"] <= 0
    service = month["StockCode"].str.strip().str.upper().isin(UCI_NON_PRODUCT_CODES)
    expected_dropped = {
        "cancellation": int(cancel.sum()),
        "missing_customer_id": int((~cancel & no_customer).sum()),
        "non_positive_quantity": int((~cancel & ~no_customer & bad_qty).sum()),
        "non_positive_price": int((~cancel & ~no_customer & ~bad_qty & bad_price).sum()),
        "non_product_code": int((~cancel & ~no_customer & ~bad_qty & ~bad_price & service).sum()),
    }
    kept = ~(cancel | no_customer | bad_qty | bad_price | service)

    assert summary["lines_in_range"] == len(month)
    assert summary["dropped"] == expected_dropped
    assert summary["kept"] == int(kept.sum()) == len(month) - summary["dropped_total"]
    assert summary["flagged"]["missing_customer_id"] == int(no_customer.sum())
    assert summary["days"] == 31 and lake.list_partitions(settings, C.RAW_EVENTS)[0] == START
    assert summary["rows"][C.RAW_EVENTS] == summary["kept"]
    assert summary["dangling_events"] == {"item_not_in_snapshot": 0, "user_not_in_snapshot": 0}
    # Users: every customer whose first line (of any kind) is by the end of the month.
    first_line = raw.dropna(subset=["CustomerID"]).groupby("CustomerID")["InvoiceDate"].min()
    assert summary["users"] == int((first_line.dt.date <= END).sum())
    # No invoices on Saturdays (or around new year): empty event partitions, listed.
    assert "2011-01-08" in summary["days_without_events"]
    assert all(dt.date.fromisoformat(d).weekday() == 5 or d <= "2011-01-03"
               for d in summary["days_without_events"])  # fmt: skip


def test_partitions_follow_the_contracts(imported: tuple[Settings, dict]) -> None:
    settings, _ = imported
    day = dt.date(2011, 1, 10)
    tables = {t: lake.read_partition(settings, t, day) for t in C.RAW_SCHEMAS}
    for name, table in tables.items():
        assert table.schema.equals(C.RAW_SCHEMAS[name]), name
    events, items, users = (tables[t].to_pandas() for t in C.RAW_SCHEMAS)
    assert len(events) > 0 and set(events["event_type"]) == {"purchase"}
    assert events["item_id"].isin(items["item_id"]).all()
    assert events["user_id"].isin(users["user_id"]).all()
    assert (items["price"] > 0).all() and set(items["currency"]) == {"GBP"}
    earlier = lake.read_partition(settings, C.RAW_ITEMS, day - dt.timedelta(days=1))
    assert set(earlier.column("item_id").to_pylist()) <= set(items["item_id"])


def test_a_real_day_passes_the_raw_suites(imported: tuple[Settings, dict]) -> None:
    from ranking_jobs.validation import validate_raw

    settings, _ = imported
    result = validate_raw(RunContext.create(dt.date(2011, 1, 10), settings))
    assert result["success"] is True
