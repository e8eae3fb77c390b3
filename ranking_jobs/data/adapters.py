"""Adapters: real interaction data into the raw contracts of the lake.

Two entry points, both taking a :class:`RunContext` (only its settings are used)
and writing ``raw/events``, ``raw/items`` and ``raw/users`` for every UTC day of
``[start, end]`` through :func:`ranking_jobs.lake.write_partition`, exactly like
the synthetic generator does:

- ``raw/events`` at ``dt=D``: the events whose ``ts`` falls in day D (a day
  without events, such as a shop's closed day, gets an empty, schema-correct
  partition and is listed in the summary: the nights after it read it as a day
  without events, while the raw suite refuses a night on that day itself);
- ``raw/items`` at ``dt=D``: a daily *snapshot*: every listing listed by the end
  of D and not sold before D starts (``sold_at``/``status`` only show a sale that
  happened by the end of D);
- ``raw/users`` at ``dt=D``: every user signed up by the end of D (cumulative).

Both return a JSON-able summary with the counts of what was kept, dropped (by
reason) and written; every drop is also logged.

:func:`load_uci_online_retail` - the UCI Online Retail file (a UK gift shop,
2010-12-01..2011-12-09), a *repurchase* domain: products are not one-of-a-kind
and customers buy the same product again, so run the pipeline on it with
``exclude_purchased=False`` (``RANKING_EXCLUDE_PURCHASED=false``); the summary
says so in ``recommended_settings``. Mapping:

- invoice line -> one ``purchase`` event: ``event_id = f"uci-{row:08d}"`` (the
  0-based row of the source file, zero-padded so ids sort in file order),
  ``ts`` = ``InvoiceDate`` read as UTC (the file has UK local time without a zone;
  summer times are therefore one hour late, which moves no line across a day
  because every line is between 06:00 and 20:59), ``surface='home'``,
  ``position=0``, ``query`` null, ``session_id`` = ``InvoiceNo``. A line with
  ``Quantity > 1`` is still *one* event: the contracts have no quantity and
  the ranking label is "bought it", not "how many" (the count of such lines is
  in the summary).
- Lines are dropped for the first reason that applies, in this order (the
  summary's ``dropped``; ``flagged`` counts every reason independently):
  ``cancellation`` (``InvoiceNo`` starts with ``C``), ``missing_customer_id``,
  ``non_positive_quantity``, ``non_positive_price``, ``non_product_code``
  (postage, carriage, fees, discounts, manual adjustments, samples:
  :data:`UCI_NON_PRODUCT_CODES`; they are not things to recommend).
- customer -> user: ``user_id = int(CustomerID)``, ``signed_up_at`` = the time of
  the customer's first invoice line of any kind (cancellations included),
  ``country`` = the UCI country name of that first line (kept verbatim, e.g.
  ``United Kingdom``, ``EIRE``), no declared size or styles.
- product -> listing: ``StockCode`` upper-cased and stripped (the file has
  dotcom variants such as ``85123a`` of ``85123A``: the same product);
  ``item_id`` = 1-based dense rank of that code among *all* codes of the file,
  sorted (stable for the file whatever range or filters are used; the table
  ``<data_root>/import/id_map_uci_stock_codes.parquet`` maps ids back to codes
  and descriptions). A code becomes a listing when it has at least one usable
  line (not a cancellation, ``Quantity > 0``, ``UnitPrice > 0``, customer known
  or not) and is not a non-product code. ``price`` = median ``UnitPrice`` of its
  usable lines over the whole file (a static catalogue price: UCI unit prices
  are list prices with quantity tiers, so this is a documented, mild look-ahead),
  ``currency='GBP'``, ``listed_at`` = the product's first line of any kind,
  ``status='available'`` and ``sold_at`` null forever, ``seller_id=0`` (the shop;
  0 is no CustomerID), ``brand='uci'``, ``size='one size'``,
  ``condition='new_with_tags'`` (retail stock). ``category``/``subcategory``
  come from the product's most frequent description through the keyword table
  :data:`UCI_CATEGORY_RULES` (bag, mug_cup, candle_light, card_wrap, box_tin,
  cushion_textile, sign, jewellery, toy_game, kitchen, home_decor, else other;
  Christmas words win over all of them as ``christmas``, keeping the matched
  subcategory or ``decoration``), ``colour`` from the first colour word
  (:data:`UCI_COLOURS`, else ``multicolour``), ``style`` is ``vintage`` when the
  description says so (:data:`UCI_VINTAGE`), else ``classic``.

:func:`import_interactions` - a generic importer for any interaction log
(CSV or Parquet) with optional item and user tables; see its docstring for the
columns, defaults, the weight -> event type mapping and the id mapping.

:func:`run_import` - the entry point of the ``ranking-jobs import`` subcommand.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.settings import Settings

log = logging.getLogger("ranking_jobs.data.adapters")

DAY = dt.timedelta(days=1)
IMPORT_DIR = "import"
SORT_KEYS: dict[str, tuple[str, ...]] = {
    C.RAW_EVENTS: ("ts", "event_id"),
    C.RAW_ITEMS: ("item_id",),
    C.RAW_USERS: ("user_id",),
}

# ----------------------------------------------------------------------------- UCI

UCI_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
# Stock codes that are charges, fees or adjustments, not merchandise (upper-cased).
UCI_NON_PRODUCT_CODES = frozenset(
    {"POST", "DOT", "C2", "M", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK"}
)
UCI_DROP_REASONS = (
    "cancellation",
    "missing_customer_id",
    "non_positive_quantity",
    "non_positive_price",
    "non_product_code",
)
UCI_SELLER_ID = 0
UCI_BRAND = "uci"
UCI_SIZE = "one size"
UCI_CONDITION = "new_with_tags"
UCI_CURRENCY = "GBP"

# Seasonal first: a product whose description matches it is category "christmas",
# with the subcategory of the first rule below that also matches (else "decoration").
UCI_SEASONAL = re.compile(r"\b(?:CHRISTMAS|XMAS|ADVENT|SANTA|REINDEER|SNOWMAN|BAUBLES?|NATIVITY)")
# (category, ((subcategory, regex on the upper-cased description), ...)); first match wins.
UCI_CATEGORY_RULES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "bag",
        (
            ("jumbo bag", r"\bJUMBO\b.*\b(?:BAG|SHOPPER)"),
            ("lunch bag", r"\bLUNCH BAG"),
            ("bag", r"\bBAGS?\b|\bSHOPPER\b|\bTOTE\b|\bPURSE\b"),
        ),
    ),
    ("mug_cup", (("mug", r"\bMUGS?\b"), ("cup", r"\bCUPS?\b|\bTEACUPS?\b|\bSAUCERS?\b"))),
    (
        "candle_light",
        (
            ("t-light holder", r"T-?LIGHT|TEA ?LIGHT"),
            ("candle", r"\bCANDLES?\b"),
            ("lantern", r"\bLANTERNS?\b"),
            ("light", r"\bLIGHTS?\b|\bLAMPS?\b"),
        ),
    ),
    (
        "card_wrap",
        (
            ("card", r"\bCARDS?\b"),
            ("wrap", r"\bWRAP|\bRIBBONS?\b|\bTISSUES?\b|\bGIFT TAPE\b"),
        ),
    ),
    ("box_tin", (("tin", r"\bTINS?\b"), ("box", r"\bBOX(?:ES)?\b"))),
    (
        "cushion_textile",
        (
            ("cushion", r"\bCUSHION"),
            ("textile", r"\bAPRON|\bTEA TOWEL|\bTOWEL|\bBLANKET|\bTHROW\b|\bQUILT"),
        ),
    ),
    ("sign", (("sign", r"\bSIGNS?\b|\bPLAQUE"),)),
    (
        "jewellery",
        (
            ("necklace", r"\bNECKLACE"),
            ("earrings", r"\bEARRINGS?\b"),
            ("bracelet", r"\bBRACELET"),
            ("jewellery", r"\bJEWELL?ERY|\bBROOCH|\bDIAMANTE"),
        ),
    ),
    (
        "toy_game",
        (
            ("game", r"\bGAMES?\b|\bPUZZLES?\b|\bDOMINOES\b|\bSKITTLES\b"),
            ("toy", r"\bTOYS?\b|\bDOLLY?\b|\bTEDDY\b|\bSPACEBOY\b|\bPLAYHOUSE\b"),
        ),
    ),
    (
        "kitchen",
        (
            ("tableware", r"\bPLATES?\b|\bBOWLS?\b|\bNAPKINS?\b|\bCUTLERY\b|\bCOASTERS?\b"),
            ("baking", r"\bCAKE|\bBAKING\b|\bCOOKIE|\bJELLY MOULD"),
            ("storage", r"\bJARS?\b|\bBOTTLES?\b|\bTRAYS?\b|\bTEAPOT|\bTEA COSY"),
        ),
    ),
    (
        "home_decor",
        (
            ("frame", r"\bFRAMES?\b"),
            ("clock", r"\bCLOCKS?\b"),
            ("mirror", r"\bMIRRORS?\b"),
            ("garland", r"\bBUNTING\b|\bGARLANDS?\b|\bWREATH"),
            ("decoration", r"\bDECORATIONS?\b|\bORNAMENTS?\b|\bHANGING\b|\bVASES?\b"),
        ),
    ),
)
UCI_OTHER = ("other", "other")
# Colour words (upper-case regex) -> the marketplace's colour vocabulary; the
# left-most colour word of the description wins, none -> "multicolour".
UCI_COLOURS: dict[str, str] = {
    "BLACK": "black",
    "WHITE|IVORY": "white",
    "GREY|GRAY|SILVER": "grey",
    "NAVY": "navy",
    "BLUE": "blue",
    "CREAM|BEIGE|NATURAL": "beige",
    "BROWN|CHOCOLATE": "brown",
    "RED": "red",
    "PINK": "pink",
    "GREEN": "green",
    "YELLOW|GOLD": "yellow",
}
UCI_VINTAGE = re.compile(r"\b(?:VINTAGE|RETRO|ANTIQUE|EDWARDIAN|VICTORIAN|REGENCY|BAROQUE)\b")

_CATEGORY_RE = [
    (cat, [(sub, re.compile(rx)) for sub, rx in subs]) for cat, subs in UCI_CATEGORY_RULES
]
_COLOUR_RE = re.compile(r"\b(" + "|".join(f"(?:{k})" for k in UCI_COLOURS) + r")\b")
_COLOUR_OF = {alt: v for k, v in UCI_COLOURS.items() for alt in k.split("|")}


def uci_category(description: str) -> tuple[str, str]:
    """(category, subcategory) of a UCI product description (see UCI_CATEGORY_RULES)."""
    text = (description or "").upper()
    found: tuple[str, str] | None = None
    for cat, subs in _CATEGORY_RE:
        for sub, rx in subs:
            if rx.search(text):
                found = (cat, sub)
                break
        if found:
            break
    if UCI_SEASONAL.search(text):
        return "christmas", found[1] if found else "decoration"
    return found or UCI_OTHER


def uci_colour(description: str) -> str:
    m = _COLOUR_RE.search((description or "").upper())
    return _COLOUR_OF[m.group(1)] if m else "multicolour"


def uci_style(description: str) -> str:
    return "vintage" if UCI_VINTAGE.search((description or "").upper()) else "classic"


def load_uci_online_retail(
    ctx: RunContext,
    path: str | Path,
    *,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
) -> dict[str, Any]:
    """Write the UCI Online Retail file as raw partitions for ``[start, end]`` (UTC days).

    ``start``/``end`` default to the first and last day of the file. Users and
    listings are derived from the whole file (so a user or listing is in every
    snapshot from its first appearance on, whatever the range), events only
    from lines of the range. See the module docstring for the mapping and the
    drop rules. Returns the summary (counts by reason, users, items, days,
    ``recommended_settings``).
    """
    settings = ctx.settings
    src = str(path)
    raw = _read_table(src)
    missing = [c for c in UCI_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(
            f"{src}: not a UCI Online Retail file, missing column(s) {missing} "
            f"(expected {list(UCI_COLUMNS)})"
        )
    if raw.empty:
        raise ValueError(f"{src}: the file has no rows")
    df = raw.reset_index(drop=True)
    df["row"] = np.arange(len(df), dtype=np.int64)
    df["ts"] = _parse_ts(df["InvoiceDate"], src, "InvoiceDate")
    df["invoice"] = df["InvoiceNo"].astype(str).str.strip()
    df["code"] = df["StockCode"].astype(str).str.strip().str.upper()
    df["description"] = df["Description"].astype("string").fillna("").str.strip()
    quantity = pd.to_numeric(df["Quantity"], errors="coerce")
    price = pd.to_numeric(df["UnitPrice"], errors="coerce")
    customer = pd.to_numeric(df["CustomerID"], errors="coerce")
    df["unit_price"] = price

    flags = {
        "cancellation": df["invoice"].str.startswith("C").to_numpy(),
        "missing_customer_id": customer.isna().to_numpy(),
        "non_positive_quantity": ~(quantity > 0).to_numpy(),
        "non_positive_price": ~(price > 0).to_numpy(),
        "non_product_code": df["code"].isin(UCI_NON_PRODUCT_CODES).to_numpy(),
    }
    reason = np.full(len(df), "", dtype=object)
    for name in reversed(UCI_DROP_REASONS):  # the first reason in the order wins
        reason[flags[name]] = name
    kept = reason == ""

    # --- ids, listings, users: from the whole file ------------------------------
    codes = np.sort(df["code"].unique())
    item_of = pd.Series(np.arange(1, len(codes) + 1, dtype=np.int64), index=codes)
    df["item_id"] = item_of.reindex(df["code"]).to_numpy()
    usable = (
        ~flags["cancellation"]
        & ~flags["non_positive_quantity"]
        & ~flags["non_positive_price"]
        & ~flags["non_product_code"]
    )
    items = _uci_listings(df, usable, codes, item_of)
    users = _uci_users(df, customer)

    # --- the range ----------------------------------------------------------------
    first_day, last_day = _day_of(df["ts"].min()), _day_of(df["ts"].max())
    days = _days(start or first_day, end or last_day)
    day = df["ts"].dt.date
    in_range = ((day >= days[0]) & (day <= days[-1])).to_numpy()
    lines_in_range = int(in_range.sum())
    if lines_in_range == 0:
        raise ValueError(
            f"{src}: no invoice lines in {days[0]}..{days[-1]}; "
            f"the file covers {first_day}..{last_day}"
        )
    sel = df.loc[kept & in_range]
    events = pd.DataFrame(
        {
            "event_id": "uci-" + sel["row"].map("{:08d}".format),
            "ts": sel["ts"],
            "user_id": customer[sel.index].astype(np.int64),
            "item_id": sel["item_id"].astype(np.int64),
            "event_type": "purchase",
            "surface": "home",
            "query": None,
            "position": np.int32(0),
            "session_id": sel["invoice"],
        }
    )
    dropped = {name: int(((reason == name) & in_range).sum()) for name in UCI_DROP_REASONS}
    flagged = {name: int((flags[name] & in_range).sum()) for name in UCI_DROP_REASONS}
    for name in UCI_DROP_REASONS:
        log.info(
            "UCI %s..%s: dropped %s line(s) as %s", days[0], days[-1], f"{dropped[name]:,}", name
        )

    written = _write_days(settings, days, events, items, users)
    id_map = pd.DataFrame({"item_id": item_of.to_numpy(), "stock_code": item_of.index}).merge(
        items[["item_id", "description", "category", "subcategory"]], on="item_id", how="left"
    )
    id_map["is_listing"] = id_map["item_id"].isin(items["item_id"])
    id_map_uri = _write_import_file(settings, "id_map_uci_stock_codes.parquet", id_map)

    summary: dict[str, Any] = {
        "adapter": "uci_online_retail",
        "source": src,
        "file": {
            "lines": len(df),
            "customers": int(customer.nunique()),
            "stock_codes": int(df["StockCode"].astype(str).nunique()),
            "products": len(codes),
            "invoices": int(df["invoice"].nunique()),
            "first_day": first_day.isoformat(),
            "last_day": last_day.isoformat(),
        },
        "start": days[0].isoformat(),
        "end": days[-1].isoformat(),
        "days": len(days),
        "lines_in_range": lines_in_range,
        "kept": len(events),
        "dropped": dropped,
        "dropped_total": int(sum(dropped.values())),
        "flagged": flagged,
        "kept_quantity_gt_1": int((quantity[sel.index] > 1).sum()),
        "users": written["users"],
        "items": written["items"],
        "listings_total": len(items),
        "products_without_usable_line": int(len(codes) - len(items)),
        "customers_with_events": int(events["user_id"].nunique()),
        "items_with_events": int(events["item_id"].nunique()),
        "repeat_purchase_share": _repeat_share(events),
        "days_without_events": written["days_without_events"],
        "rows": written["rows"],
        "dangling_events": written["dangling_events"],
        "id_map": id_map_uri,
        "recommended_settings": {"exclude_purchased": False},
    }
    log.info(
        "UCI %s..%s: %s lines in range, kept %s, dropped %s %s; %s users, %s items, %s days "
        "(%s without events); run the pipeline with exclude_purchased=False",
        days[0],
        days[-1],
        f"{lines_in_range:,}",
        f"{summary['kept']:,}",
        f"{summary['dropped_total']:,}",
        dropped,
        f"{summary['users']:,}",
        f"{summary['items']:,}",
        len(days),
        len(written["days_without_events"]),
    )
    return summary


def _uci_listings(
    df: pd.DataFrame, usable: np.ndarray, codes: np.ndarray, item_of: pd.Series
) -> pd.DataFrame:
    """One row per product with a usable line: the listing's static attributes."""
    use = df.loc[usable]
    price = use.groupby("code")["unit_price"].median()
    listed = df.groupby("code")["ts"].min()
    # Most frequent description among usable lines (ties: alphabetical).
    desc = (
        use.loc[~use["description"].isin(["", "nan", "?"])]
        .groupby(["code", "description"])
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["code", "n", "description"], ascending=[True, False, True])
        .drop_duplicates("code")
        .set_index("code")["description"]
    )
    code = price.index.to_numpy()
    text = desc.reindex(code).fillna("").astype(str).tolist()
    cats = [uci_category(t) for t in text]
    n = len(code)
    return pd.DataFrame(
        {
            "item_id": item_of.reindex(code).to_numpy(np.int64),
            "seller_id": np.full(n, UCI_SELLER_ID, np.int64),
            "category": [c for c, _ in cats],
            "subcategory": [s for _, s in cats],
            "brand": UCI_BRAND,
            "size": UCI_SIZE,
            "condition": UCI_CONDITION,
            "colour": [uci_colour(t) for t in text],
            "style": [uci_style(t) for t in text],
            "price": price.to_numpy(np.float64),
            "currency": UCI_CURRENCY,
            "listed_at": listed.reindex(code).reset_index(drop=True),
            "sold_at": pd.Series(pd.NaT, index=range(n), dtype="datetime64[us, UTC]"),
            "status": "available",
            "description": text,
        }
    ).sort_values("item_id", ignore_index=True)


def _uci_users(df: pd.DataFrame, customer: pd.Series) -> pd.DataFrame:
    known = df.loc[customer.notna(), ["ts", "row", "Country"]].assign(
        user_id=customer[customer.notna()].astype(np.int64)
    )
    first = known.sort_values(["user_id", "ts", "row"]).drop_duplicates("user_id")
    return pd.DataFrame(
        {
            "user_id": first["user_id"].to_numpy(np.int64),
            "signed_up_at": first["ts"].reset_index(drop=True),
            "country": first["Country"].astype("string").fillna("Unspecified").to_numpy(),
            "declared_size": None,
            "declared_styles": None,
        }
    )


# ------------------------------------------------------------------------- generic

INTERACTIONS_REQUIRED = ("user_id", "item_id", "timestamp")
# weight -> event type: the same grades as contracts.LABEL_GRADES, so a 1..5
# rating (MovieLens) maps one grade to one event type. weight <= 0 is no
# positive signal (the contracts have no negative event) and is dropped.
WEIGHT_THRESHOLDS: tuple[tuple[float, str], ...] = (
    (5.0, "purchase"),
    (4.0, "add_to_bag"),
    (3.0, "like"),
    (2.0, "click"),
    (0.0, "impression"),  # 0 < weight < 2
)
# Defaults of the item columns a given items table (or a derived one) lacks.
ITEM_DEFAULTS: dict[str, Any] = {
    "seller_id": 0,
    "category": "unknown",
    "subcategory": "unknown",
    "brand": "unknown",
    "size": "one size",
    "condition": "good",
    "colour": "unknown",
    "style": "unknown",
    "price": 1.0,
    "currency": "EUR",
}
USER_DEFAULTS: dict[str, Any] = {"country": "unknown"}
DEFAULT_SURFACE = "home"
ID_MAP_FILES = {"user": "id_map_users.parquet", "item": "id_map_items.parquet"}


def weight_to_event_type(weight: pd.Series) -> pd.Series:
    """Event type per weight by WEIGHT_THRESHOLDS (None for weight <= 0)."""
    w = weight.to_numpy(np.float64)
    out = np.full(len(w), None, dtype=object)
    for threshold, event_type in reversed(WEIGHT_THRESHOLDS):
        out[w > threshold if threshold == 0.0 else w >= threshold] = event_type
    return pd.Series(out, index=weight.index)


def import_interactions(
    ctx: RunContext,
    interactions: str | Path,
    items: str | Path | None = None,
    users: str | Path | None = None,
    *,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
) -> dict[str, Any]:
    """Write any interaction log (CSV or Parquet) as raw partitions for ``[start, end]``.

    ``interactions`` columns: ``user_id``, ``item_id``, ``timestamp`` and either
    ``event_type`` (one of contracts.EVENT_TYPES; it wins when both are given)
    or a numeric ``weight`` mapped by :data:`WEIGHT_THRESHOLDS` (>= 5 purchase,
    >= 4 add_to_bag, >= 3 like, >= 2 click, > 0 impression; <= 0 dropped and
    counted). Optional: ``surface`` (default ``home``), ``position`` (default 0),
    ``session_id`` (default ``<user_id>-<YYYY-MM-DD>``: one session per user and
    day), ``query``. ``event_id = f"imp-{row:09d}"`` (the 0-based input row).

    Timestamps: datetime columns (naive = UTC), ISO-8601 strings (naive = UTC)
    or numbers = Unix epoch *seconds*; anything else is an error.

    Ids: integer columns (or floats with integral values) are used as they are.
    A column of strings is mapped to stable ints through
    ``<data_root>/import/id_map_{users,items}.parquet`` (``source_id``, ``id``):
    known strings keep their id, new ones get the next ids in sorted order, so
    re-imports and later imports agree. One kind per entity: if any user-id
    column (interactions, users table, items' ``seller_id``, sellers being
    users) holds strings, all of them are mapped.

    ``items``: ``item_id`` plus any contract item column; a missing column or a
    null value takes :data:`ITEM_DEFAULTS`, ``listed_at`` the item's first
    interaction, ``sold_at`` null (and the snapshot derives ``status`` from
    ``sold_at``, so a given ``status`` column is ignored); ``price`` must be > 0.
    ``users``: ``user_id`` plus any of ``signed_up_at`` (default: first
    interaction), ``country`` (default ``unknown``), ``declared_size``,
    ``declared_styles`` (a list or a ``|``-separated string). A missing table is
    derived from the interactions; ids interacted with but absent from a given
    table are added with the defaults and counted (``added_from_interactions``).
    Unknown columns are ignored and listed in the summary.

    Raises ValueError naming the file and the column for: an empty file, a
    missing required column, unparseable or null timestamps, null or
    non-integral numeric ids, unknown event types, non-numeric weights, bad
    prices or conditions, duplicate ids in a table, ``start > end``, and
    nothing left in the range.
    """
    settings = ctx.settings
    src = str(interactions)
    df = _read_table(src)
    if df.empty:
        raise ValueError(f"{src}: the interactions file has no rows")
    _require(df, src, INTERACTIONS_REQUIRED)
    if "event_type" not in df.columns and "weight" not in df.columns:
        raise ValueError(
            f"{src}: needs 'event_type' (a column, one of {list(C.EVENT_TYPES)}) or a numeric "
            f"column 'weight'; found {list(df.columns)}"
        )
    df = df.reset_index(drop=True)
    n_rows = len(df)
    df["ts"] = _parse_ts(df["timestamp"], src, "timestamp")

    dropped = {"non_positive_weight": 0}
    if "event_type" in df.columns:
        et = df["event_type"]
        if et.isna().any():
            _fail(src, "event_type", "is null", df.index[et.isna()], et)
        bad = ~et.isin(C.EVENT_TYPES)
        if bad.any():
            _fail(src, "event_type", f"is not one of {list(C.EVENT_TYPES)}", df.index[bad], et)
        df["event_type"] = et.astype(str)
        mapping = "event_type"
    else:
        weight = pd.to_numeric(df["weight"], errors="coerce")
        bad = weight.isna()
        if bad.any():
            _fail(src, "weight", "is not a number", df.index[bad], df["weight"])
        df["event_type"] = weight_to_event_type(weight)
        mapping = "weight"
        drop = df["event_type"].isna()
        dropped["non_positive_weight"] = int(drop.sum())
        if drop.any():
            log.info("%s: dropped %s row(s) with weight <= 0", src, f"{int(drop.sum()):,}")
        df = df.loc[~drop].copy()
        if df.empty:
            raise ValueError(f"{src}: every row has weight <= 0, nothing to import")

    items_df = _read_side(items, "item_id") if items is not None else None
    users_df = _read_side(users, "user_id") if users is not None else None

    # --- ids ----------------------------------------------------------------------
    user_cols: list[IdColumn] = [(src, "user_id", df, False)]
    item_cols: list[IdColumn] = [(src, "item_id", df, False)]
    if users_df is not None:
        user_cols.append((str(users), "user_id", users_df, False))
    if items_df is not None:
        item_cols.append((str(items), "item_id", items_df, False))
        if "seller_id" in items_df.columns:  # null = no seller (0), never mapped
            user_cols.append((str(items), "seller_id", items_df, True))
    user_ids, user_map = _resolve_ids(settings, "user", user_cols)
    item_ids, item_map = _resolve_ids(settings, "item", item_cols)
    id_info = {"users": user_ids, "items": item_ids}

    # --- events -------------------------------------------------------------------
    first_day, last_day = _day_of(df["ts"].min()), _day_of(df["ts"].max())
    days = _days(start or first_day, end or last_day)
    day = df["ts"].dt.date
    in_range = (day >= days[0]) & (day <= days[-1])
    out_of_range = int((~in_range).sum())
    sel = df.loc[in_range]
    if sel.empty:
        raise ValueError(
            f"{src}: no interactions in {days[0]}..{days[-1]}; "
            f"the file covers {first_day}..{last_day}"
        )
    events = pd.DataFrame(
        {
            "event_id": "imp-" + pd.Series(sel.index, index=sel.index).map("{:09d}".format),
            "ts": sel["ts"],
            "user_id": sel["user_id"].astype(np.int64),
            "item_id": sel["item_id"].astype(np.int64),
            "event_type": sel["event_type"],
            "surface": _surface(sel, src),
            "query": sel["query"].astype("string") if "query" in sel else None,
            "position": _position(sel, src),
            "session_id": _session(sel),
        }
    )

    # --- items and users ---------------------------------------------------------
    first_seen_item = df.groupby("item_id")["ts"].min()
    first_seen_user = df.groupby("user_id")["ts"].min()
    earliest = df["ts"].min()
    item_table, item_info = _items_table(items_df, str(items), first_seen_item, earliest)
    user_table, user_info = _users_table(users_df, str(users), first_seen_user, earliest)
    # Id maps are extended only once every input has been checked.
    for kind, new_map in (("user", user_map), ("item", item_map)):
        if new_map is not None:
            _write_import_file(settings, ID_MAP_FILES[kind], new_map)

    written = _write_days(settings, days, events, item_table, user_table)
    for name, count in written["dangling_events"].items():
        if count:
            log.warning(
                "%s: %s event(s) %s (listed/signed up later, or sold before that day)",
                src,
                f"{count:,}",
                name.replace("_", " "),
            )
    summary: dict[str, Any] = {
        "adapter": "interactions",
        "source": src,
        "items_source": None if items is None else str(items),
        "users_source": None if users is None else str(users),
        "rows": n_rows,
        "event_type_from": mapping,
        "dropped": dropped,
        "out_of_range": out_of_range,
        "kept": len(events),
        "event_types": {k: int(v) for k, v in events["event_type"].value_counts().items()},
        "start": days[0].isoformat(),
        "end": days[-1].isoformat(),
        "days": len(days),
        "ids": id_info,
        "items_table": item_info,
        "users_table": user_info,
        "users": written["users"],
        "items": written["items"],
        "repeat_purchase_share": _repeat_share(events),
        "days_without_events": written["days_without_events"],
        "written_rows": written["rows"],
        "dangling_events": written["dangling_events"],
    }
    repeats = summary["repeat_purchase_share"]
    summary["recommended_settings"] = {"exclude_purchased": not repeats}
    log.info(
        "imported %s: %s rows, kept %s, dropped %s, %s out of range; %s users, %s items, %s days",
        src,
        f"{n_rows:,}",
        f"{summary['kept']:,}",
        dropped,
        f"{out_of_range:,}",
        f"{summary['users']:,}",
        f"{summary['items']:,}",
        len(days),
    )
    return summary


def _surface(df: pd.DataFrame, src: str) -> pd.Series:
    if "surface" not in df.columns:
        return pd.Series(DEFAULT_SURFACE, index=df.index)
    s = df["surface"].where(df["surface"].notna(), DEFAULT_SURFACE)
    bad = ~s.isin(C.SURFACES)
    if bad.any():
        _fail(src, "surface", f"is not one of {list(C.SURFACES)}", df.index[bad], s)
    return s.astype(str)


def _position(df: pd.DataFrame, src: str) -> pd.Series:
    if "position" not in df.columns:
        return pd.Series(0, index=df.index, dtype=np.int32)
    p = pd.to_numeric(df["position"], errors="coerce").fillna(0)
    bad = (p < 0) | (p != np.floor(p))
    if bad.any():
        _fail(src, "position", "is not an integer >= 0", df.index[bad], df["position"])
    return p.astype(np.int32)


def _session(df: pd.DataFrame) -> pd.Series:
    default = df["user_id"].astype(str) + "-" + df["ts"].dt.strftime("%Y-%m-%d")
    if "session_id" not in df.columns:
        return default
    return df["session_id"].astype("string").fillna(default).astype(str)


def _items_table(
    given: pd.DataFrame | None, src: str, first_seen: pd.Series, earliest: pd.Timestamp
) -> tuple[pd.DataFrame, dict[str, Any]]:
    contract = C.ITEMS_SCHEMA.names
    info: dict[str, Any] = {"given": given is not None}
    if given is None:
        table = pd.DataFrame({"item_id": first_seen.index.to_numpy(np.int64)})
        info.update(columns_defaulted=[c for c in contract if c != "item_id"], ignored_columns=[])
    else:
        table = given.copy()
        info["ignored_columns"] = sorted(set(table.columns) - set(contract))
        info["columns_defaulted"] = [c for c in contract if c not in table.columns]
    added = sorted(set(first_seen.index) - set(table["item_id"]))
    given_nulls = {c: int(table[c].isna().sum()) for c in ITEM_DEFAULTS if c in table.columns}
    info["rows_given"] = 0 if given is None else len(given)
    info["added_from_interactions"] = len(added) if given is not None else 0
    if given is not None and added:
        log.warning(
            "%s: %s interacted item id(s) are not in the table, added with defaults, e.g. %s",
            src,
            f"{len(added):,}",
            added[:5],
        )
    table = pd.concat([table, pd.DataFrame({"item_id": np.array(added, np.int64)})])
    table = table.reset_index(drop=True)
    for col, default in ITEM_DEFAULTS.items():
        if col not in table.columns:
            table[col] = default
            continue
        nulls = table[col].isna()
        table[col] = table[col].where(~nulls, default)
        if col == "price":
            price = pd.to_numeric(table[col], errors="coerce")
            bad = price.isna() | (price <= 0)
            if bad.any():
                _fail(src, "price", "is not a number > 0", table.index[bad], table[col])
            table[col] = price.astype(np.float64)
        elif col == "condition":
            bad = ~table[col].isin(C.CONDITIONS)
            if bad.any():
                _fail(src, col, f"is not one of {list(C.CONDITIONS)}", table.index[bad], table[col])
        elif col == "seller_id":
            table[col] = table[col].astype(np.int64)
        else:
            table[col] = table[col].astype(str)
    seen = first_seen.reindex(table["item_id"]).fillna(earliest).set_axis(table.index)
    table["listed_at"] = _optional_ts(table, "listed_at", src, seen)
    table["sold_at"] = _optional_ts(table, "sold_at", src, None)
    table["status"] = "available"  # derived per snapshot from sold_at
    info["nulls_filled"] = {k: v for k, v in given_nulls.items() if v}
    return table[contract], info


def _users_table(
    given: pd.DataFrame | None, src: str, first_seen: pd.Series, earliest: pd.Timestamp
) -> tuple[pd.DataFrame, dict[str, Any]]:
    contract = C.USERS_SCHEMA.names
    info: dict[str, Any] = {"given": given is not None}
    if given is None:
        table = pd.DataFrame({"user_id": first_seen.index.to_numpy(np.int64)})
        info.update(columns_defaulted=[c for c in contract if c != "user_id"], ignored_columns=[])
    else:
        table = given.copy()
        info["ignored_columns"] = sorted(set(table.columns) - set(contract))
        info["columns_defaulted"] = [c for c in contract if c not in table.columns]
    added = sorted(set(first_seen.index) - set(table["user_id"]))
    info["rows_given"] = 0 if given is None else len(given)
    info["added_from_interactions"] = len(added) if given is not None else 0
    if given is not None and added:
        log.warning(
            "%s: %s interacting user id(s) are not in the table, added with defaults, e.g. %s",
            src,
            f"{len(added):,}",
            added[:5],
        )
    table = pd.concat([table, pd.DataFrame({"user_id": np.array(added, np.int64)})])
    table = table.reset_index(drop=True)
    seen = first_seen.reindex(table["user_id"]).fillna(earliest).set_axis(table.index)
    table["signed_up_at"] = _optional_ts(table, "signed_up_at", src, seen)
    country = table["country"] if "country" in table else pd.Series(None, index=table.index)
    table["country"] = country.astype("string").fillna(USER_DEFAULTS["country"]).astype(str)
    if "declared_size" in table:
        table["declared_size"] = [None if pd.isna(v) else str(v) for v in table["declared_size"]]
    else:
        table["declared_size"] = None
    if "declared_styles" in table:
        table["declared_styles"] = [_styles(v) for v in table["declared_styles"]]
    else:
        table["declared_styles"] = None
    return table[contract], info


def _styles(value: object) -> list[str] | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        return [s.strip() for s in value.split("|") if s.strip()]
    return [str(s) for s in value]  # type: ignore[attr-defined]


def _optional_ts(table: pd.DataFrame, col: str, src: str, default: pd.Series | None) -> pd.Series:
    """A timestamp column of a side table: parsed (nulls allowed), nulls -> default."""
    if col in table.columns and table[col].notna().any():
        notna = table[col].notna()
        parsed = pd.Series(pd.NaT, index=table.index, dtype="datetime64[us, UTC]")
        parsed[notna] = _parse_ts(table.loc[notna, col], src, col)
    else:
        parsed = pd.Series(pd.NaT, index=table.index, dtype="datetime64[us, UTC]")
    if default is not None:
        parsed = parsed.fillna(default.astype("datetime64[us, UTC]"))
    return parsed


IMPORT_SOURCES = ("uci", "interactions")


def run_import(
    settings: Settings,
    source: str,
    path: str | Path,
    *,
    items: str | Path | None = None,
    users: str | Path | None = None,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
) -> dict[str, Any]:
    """``ranking-jobs import SOURCE PATH``: run one adapter, return its summary.

    ``source`` is ``uci`` (:func:`load_uci_online_retail`) or ``interactions``
    (:func:`import_interactions`, the only one taking ``items``/``users``).
    """
    ds = _as_date(end, "end") if end is not None else dt.datetime.now(dt.UTC).date()
    ctx = RunContext.create(ds, settings, f"import__{source}")
    if source == "uci":
        if items is not None or users is not None:
            raise ValueError("--items/--users apply to `import interactions` only")
        return load_uci_online_retail(ctx, path, start=start, end=end)
    if source == "interactions":
        return import_interactions(ctx, path, items, users, start=start, end=end)
    raise ValueError(f"unknown import source {source!r}: expected one of {list(IMPORT_SOURCES)}")


# -------------------------------------------------------------------------- shared


def _read_table(src: str) -> pd.DataFrame:
    name = src.lower()
    if not Path(src).exists() and "://" not in src:
        raise FileNotFoundError(f"{src}: no such file")
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(src)
    if name.endswith((".csv", ".csv.gz", ".txt")):
        try:
            return pd.read_csv(src)
        except pd.errors.EmptyDataError as exc:
            raise ValueError(f"{src}: the file is empty") from exc
    raise ValueError(f"{src}: unsupported file type, expected .csv, .csv.gz or .parquet")


def _read_side(path: str | Path, key: str) -> pd.DataFrame:
    src = str(path)
    df = _read_table(src)
    if df.empty:
        raise ValueError(f"{src}: the table has no rows")
    _require(df, src, (key,))
    df = df.reset_index(drop=True)
    dup = df[key].duplicated(keep=False) & df[key].notna()
    if dup.any():
        _fail(src, key, "has duplicate ids", df.index[dup], df[key])
    return df


def _require(df: pd.DataFrame, src: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{src}: missing required column(s) {missing}; found {list(df.columns)}")


def _fail(src: str, column: str, what: str, rows: Iterable[Any], values: pd.Series) -> None:
    rows = list(rows)
    examples = ", ".join(f"row {r}: {values.loc[r]!r}" for r in rows[:5])
    raise ValueError(f"{src}: column {column!r} {what} in {len(rows):,} row(s), e.g. {examples}")


_ZONED = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"


def _parse_ts(values: pd.Series, src: str, column: str) -> pd.Series:
    """UTC timestamps (microseconds) from datetimes, ISO-8601 strings or epoch seconds."""
    if values.isna().any():
        _fail(src, column, "is null", values.index[values.isna()], values)
    if pd.api.types.is_datetime64_any_dtype(values):
        ts = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
    elif pd.api.types.is_bool_dtype(values):
        _fail(src, column, "is not a timestamp", values.index, values)
    elif pd.api.types.is_numeric_dtype(values):
        ts = pd.to_datetime(values, unit="s", utc=True, errors="coerce")
    else:
        # Zoned and naive strings are parsed apart: pandas 2.x gives a naive string
        # the offset of an earlier zoned one when they are parsed together.
        text = values.astype(str).str.strip()
        zoned = text.str.contains(_ZONED, regex=True)
        ts = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
        if zoned.any():
            ts[zoned] = pd.to_datetime(text[zoned], utc=True, format="ISO8601", errors="coerce")
        if (~zoned).any():
            naive = pd.to_datetime(text[~zoned], format="ISO8601", errors="coerce")
            ts[~zoned] = naive.dt.tz_localize("UTC")
    bad = ts.isna()
    if bad.any():
        _fail(
            src,
            column,
            "is not a timestamp (ISO-8601 text, a datetime or Unix epoch seconds)",
            values.index[bad],
            values,
        )
    return ts.dt.floor("us").astype("datetime64[us, UTC]")


# (file, column, frame, nulls allowed): an id column to resolve in place.
IdColumn = tuple[str, str, pd.DataFrame, bool]


def _resolve_ids(
    settings: Settings, kind: str, columns: list[IdColumn]
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """Make every id column of ``kind`` integer in place, through the id map if any is text.

    Columns that allow nulls become ``Int64`` with their nulls kept. Returns the
    summary and the extended id map to write (None: nothing new)."""
    text = False
    for src, col, df, nullable in columns:
        s = df[col]
        if s.isna().any() and not nullable:
            _fail(src, col, "is null", s.index[s.isna()], s)
        s = s.dropna()
        if pd.api.types.is_bool_dtype(s):
            _fail(src, col, "is boolean, not an id", s.index, s)
        if pd.api.types.is_float_dtype(s):
            bad = s != np.floor(s)
            if bad.any():
                _fail(src, col, "has non-integer ids", s.index[bad], s)
        elif not pd.api.types.is_integer_dtype(s):
            text = True
    if not text:
        for _, col, df, nullable in columns:
            df[col] = df[col].astype("Int64" if nullable else np.int64)
        return {"mapped": False}, None
    as_text = [
        df[col].dropna().map(lambda v: str(int(v)) if isinstance(v, float) else str(v))
        for _, col, df, _ in columns
    ]
    known, uri = _read_id_map(settings, kind)
    new = sorted(set().union(*(set(s) for s in as_text)) - set(known))
    nxt = (max(known.values()) + 1) if known else 1
    mapping = {**known, **{v: nxt + i for i, v in enumerate(new)}}
    for (_, col, df, nullable), s in zip(columns, as_text, strict=True):
        ids = pd.Series(pd.NA, index=df.index, dtype="Int64")
        ids[s.index] = s.map(mapping).astype(np.int64)
        df[col] = ids if nullable else ids.astype(np.int64)
    table = None
    if new:
        table = pd.DataFrame(
            {"source_id": list(mapping), "id": np.fromiter(mapping.values(), np.int64)}
        )
    log.info("%s ids are text: mapped through %s (%s new)", kind, uri, f"{len(new):,}")
    return {"mapped": True, "id_map": uri, "known": len(known), "new": len(new)}, table


def _read_id_map(settings: Settings, kind: str) -> tuple[dict[str, int], str]:
    uri = f"{lake.table_uri(settings, IMPORT_DIR)}/{ID_MAP_FILES[kind]}"
    fs, path = lake._filesystem(settings, uri)  # the lake's filesystem resolution (S3 too)
    if fs.get_file_info(path).type.name != "File":
        return {}, uri
    table = pq.read_table(path, filesystem=fs)
    ids = table.column("id").to_pylist()
    return dict(zip(table.column("source_id").to_pylist(), ids, strict=True)), uri


def _write_import_file(settings: Settings, name: str, df: pd.DataFrame) -> str:
    """Write a side file under ``<data_root>/import/`` aside, then move it in place.

    Not a partition (an id map is not per day), hence not lake.write_partition;
    the same filesystem resolution and the same write-aside-then-swap rule."""
    uri = f"{lake.table_uri(settings, IMPORT_DIR)}/{name}"
    fs, path = lake._filesystem(settings, uri)
    parent = path.rsplit("/", 1)[0]
    fs.create_dir(parent, recursive=True)
    tmp = f"{parent}/.{name}.{uuid.uuid4().hex[:12]}"
    table = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None)
    pq.write_table(table, tmp, filesystem=fs, compression="zstd")
    fs.move(tmp, path)
    return uri


def _day_of(ts: pd.Timestamp) -> dt.date:
    return ts.tz_convert("UTC").date()


def _days(start: str | dt.date, end: str | dt.date) -> list[dt.date]:
    first, last = _as_date(start, "start"), _as_date(end, "end")
    if first > last:
        raise ValueError(f"start {first} is after end {last}")
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _as_date(value: str | dt.date, name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise ValueError(f"{name} must look like YYYY-MM-DD, got {value!r}") from exc


def _repeat_share(events: pd.DataFrame) -> float:
    """Share of purchase events whose (user, item) was already bought before (by ts)."""
    buys = events.loc[events["event_type"] == "purchase", ["user_id", "item_id", "ts"]]
    if buys.empty:
        return 0.0
    buys = buys.sort_values("ts", kind="stable")
    return round(float(buys.duplicated(["user_id", "item_id"]).mean()), 4)


def _to_table(df: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    table = pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    return table.replace_schema_metadata(None)


def _write_days(
    settings: Settings,
    days: list[dt.date],
    events: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame,
) -> dict[str, Any]:
    """Write events of each day, the items snapshot and the cumulative users of each day."""
    rows = {C.RAW_EVENTS: 0, C.RAW_ITEMS: 0, C.RAW_USERS: 0}
    dangling = {"item_not_in_snapshot": 0, "user_not_in_snapshot": 0}
    empty: list[str] = []
    by_day = {d: g for d, g in events.groupby(events["ts"].dt.date, sort=True)}
    n_items = n_users = 0
    for day in days:
        start = pd.Timestamp(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC))
        end = start + pd.Timedelta(days=1)
        ev = by_day.get(day, events.iloc[:0])
        sold = items["sold_at"]
        live = (items["listed_at"] < end) & (sold.isna() | (sold >= start))
        snap = items.loc[live].copy()
        sold_today = snap["sold_at"] < end
        snap["sold_at"] = snap["sold_at"].where(sold_today)
        snap["status"] = np.where(sold_today, "sold", "available")
        day_users = users.loc[users["signed_up_at"] < end]
        dangling["item_not_in_snapshot"] += int((~ev["item_id"].isin(snap["item_id"])).sum())
        dangling["user_not_in_snapshot"] += int((~ev["user_id"].isin(day_users["user_id"])).sum())
        if ev.empty:
            empty.append(day.isoformat())
        for table, frame, schema in (
            (C.RAW_EVENTS, ev, C.EVENTS_SCHEMA),
            (C.RAW_ITEMS, snap, C.ITEMS_SCHEMA),
            (C.RAW_USERS, day_users, C.USERS_SCHEMA),
        ):
            data = _to_table(frame, schema)
            lake.write_partition(settings, table, day, data, sort_by=SORT_KEYS[table])
            rows[table] += data.num_rows
        n_items, n_users = len(snap), len(day_users)
    if empty:
        log.warning(
            "%s day(s) without events got empty raw/events partitions (allowed in the "
            "history; a night on one of these days is refused): %s",
            len(empty),
            ", ".join(empty[:10]) + (" ..." if len(empty) > 10 else ""),
        )
    return {
        "rows": rows,
        "items": n_items,
        "users": n_users,
        "days_without_events": empty,
        "dangling_events": dangling,
    }
