"""The seeded source-data generator: determinism, the file contract, integrity, history and dirty rows."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd
import pytest

from components.sources.ecommerce.generator import COLUMNS, generate, parse_options
from components.sources.ecommerce.generator import settings as s

TABLES = tuple(COLUMNS)
SMALL = {"scale": 0.15, "seed": 11, "days": 240}
TS = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
EMAIL = re.compile(r"[a-z0-9._]+@[a-z.]+")
END = pd.Timestamp("2024-01-01") + pd.Timedelta(days=SMALL["days"])


def _hashes(folder: Path) -> dict[str, str]:
    return {t: hashlib.sha256((folder / f"{t}.csv").read_bytes()).hexdigest() for t in TABLES}


def _read(folder: Path) -> dict[str, pd.DataFrame]:
    """Every file as text columns, so malformed values are seen exactly as written."""
    return {t: pd.read_csv(folder / f"{t}.csv", dtype=str, keep_default_na=False) for t in TABLES}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    folder = tmp_path_factory.mktemp("clean")
    return folder, generate(folder, dirty_rate=0.0, **SMALL)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    folder = tmp_path_factory.mktemp("dirty")
    return folder, generate(folder, dirty_rate=0.05, **SMALL)


def test_same_arguments_give_byte_identical_files(tmp_path, dirty):
    folder, _ = dirty
    generate(tmp_path / "again", dirty_rate=0.05, **SMALL)
    generate(tmp_path / "other", dirty_rate=0.05, **{**SMALL, "seed": 12})
    assert _hashes(tmp_path / "again") == _hashes(folder)
    other = _hashes(tmp_path / "other")
    assert all(other[t] != _hashes(folder)[t] for t in ("customers", "orders", "order_items", "products"))


def test_files_follow_the_contract(dirty):
    folder, counts = dirty
    for table, columns in COLUMNS.items():
        raw = (folder / f"{table}.csv").read_bytes()
        assert b"\r" not in raw
        lines = raw.decode("utf-8").split("\n")
        assert lines[0] == ",".join(columns)
        assert lines[-1] == "" and len(lines) - 2 == counts[table]
        frame = pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False)
        for column in (c for c in columns if c.endswith("_at")):
            assert frame[column].str.fullmatch(TS).all(), (table, column)
        for column in (c for c in columns if c.endswith("_id")):
            assert frame[column].str.fullmatch(r"\d+").all(), (table, column)
    assert counts["stores"] >= len(s.STORES) and counts["customers"] > 150 and counts["orders"] > 1000


def test_sizes_follow_the_scale():
    small, large = (
        parse_options(0.1, 1, 0.0, "2024-01-01", 540),
        parse_options(2.0, 1, 0.0, "2024-01-01", 540),
    )
    assert (small.n_customers, large.n_customers) == (100, 2000)
    assert (small.n_products, large.n_products) == (s.MIN_PRODUCTS, 300)


def test_foreign_keys_always_resolve(dirty):
    t = _read(dirty[0])
    assert set(t["orders"]["customer_id"]) <= set(t["customers"]["customer_id"])
    assert set(t["orders"]["store_id"]) <= set(t["stores"]["store_id"])
    assert set(t["order_items"]["order_id"]) <= set(t["orders"]["order_id"])
    assert set(t["order_items"]["product_id"]) <= set(t["products"]["product_id"])


def test_rows_are_sorted_by_key_then_updated_at(dirty):
    t = _read(dirty[0])
    for table, frame in t.items():
        key = frame.columns[0]
        ordered = frame.assign(**{key: frame[key].astype(int)}).sort_values(
            [key, "updated_at"], kind="stable"
        )
        assert ordered.index.equals(frame.index), table


def test_customers_keep_a_history_of_versions(clean):
    customers = _read(clean[0])["customers"]
    versions = customers.groupby("customer_id")
    share = (versions.size() >= 2).mean()
    assert 0.25 <= share <= 0.65
    assert versions["updated_at"].apply(lambda ts: ts.is_monotonic_increasing and ts.is_unique).all()
    assert (versions["signup_at"].nunique() == 1).all()
    first = versions.head(1)
    assert (first["updated_at"] == first["signup_at"]).all() and (first["loyalty_tier"] == "bronze").all()
    for column in ("email", "city", "loyalty_tier"):
        assert (versions[column].nunique() > 1).any(), column
    assert set(customers["loyalty_tier"]) == set(s.TIERS)


def test_orders_come_after_sign_up_and_progress_to_a_status(clean):
    t = _read(clean[0])
    orders = t["orders"].merge(
        t["customers"].groupby("customer_id", as_index=False)["signup_at"].first(), on="customer_id"
    )
    assert (orders["ordered_at"] >= orders["signup_at"]).all()
    assert (orders["updated_at"] >= orders["ordered_at"]).all() and (orders["updated_at"] < str(END)).all()
    assert set(orders["status"]) == set(s.ORDER_STATUSES)
    last_day = pd.to_datetime(orders["ordered_at"]) >= END - pd.Timedelta(days=1)
    assert orders.loc[last_day, "status"].isin(["placed", "shipped", "delivered", "cancelled"]).all()
    assert orders.loc[last_day, "status"].isin(["placed", "shipped"]).any()
    placed = orders[orders["status"] == "placed"]
    assert len(placed) and (placed["updated_at"] == placed["ordered_at"]).all()


def test_price_changes_show_in_order_items(clean):
    t = _read(clean[0])
    items = t["order_items"].merge(t["orders"][["order_id", "ordered_at"]], on="order_id")
    items = items.merge(t["products"][["product_id", "list_price_cents", "updated_at"]], on="product_id")
    assert (items.groupby("product_id")["unit_price_cents"].nunique() >= 2).any()
    after_last_change = items[items["ordered_at"] >= items["updated_at_y"]]
    assert (
        len(after_last_change)
        and (after_last_change["unit_price_cents"] == after_last_change["list_price_cents"]).all()
    )
    products = t["products"]
    assert (products["updated_at"] > products["created_at"]).any()


def test_discounts_stay_below_the_line_amount(clean):
    items = _read(clean[0])["order_items"].astype({c: int for c in COLUMNS["order_items"][:6]})
    assert (items["quantity"] >= 1).all() and (items["unit_price_cents"] > 0).all()
    assert (items["discount_cents"] >= 0).all() and (items["discount_cents"] > 0).any()
    assert (items["discount_cents"] < items["quantity"] * items["unit_price_cents"]).all()
    per_order = items.groupby("order_id").size()
    assert 2.0 <= per_order.mean() <= 3.0


def _dirt(t: dict[str, pd.DataFrame]) -> dict[str, int]:
    customers, orders, items = t["customers"], t["orders"], t["order_items"]
    placed = items.merge(orders.drop_duplicates("order_id")[["order_id", "ordered_at"]], on="order_id")
    return {
        "duplicates": sum(int(frame.duplicated().sum()) for frame in t.values()),
        "email": int((~customers["email"].str.fullmatch(EMAIL)).sum()),
        "city": int((customers["city"] != customers["city"].str.strip().str.title()).sum()),
        "tier": int((~customers["loyalty_tier"].isin(s.TIERS)).sum()),
        "status": int((~orders["status"].isin(s.ORDER_STATUSES)).sum()),
        "quantity": int((items["quantity"].astype(int) <= 0).sum()),
        "price": int((items["unit_price_cents"] == "").sum()),
        "late": int((placed["updated_at"] != placed["ordered_at"]).sum()),
    }


def test_dirty_rows_only_when_asked(clean, dirty):
    assert all(count == 0 for count in _dirt(_read(clean[0])).values())
    assert all(count > 0 for count in _dirt(_read(dirty[0])).values()), _dirt(_read(dirty[0]))


def test_dirt_leaves_the_business_unchanged(clean, dirty):
    before, after = _read(clean[0]), _read(dirty[0])
    columns = ["order_id", "customer_id", "store_id", "ordered_at"]
    assert (
        after["orders"]
        .drop_duplicates()[columns]
        .drop_duplicates()
        .reset_index(drop=True)
        .equals(before["orders"][columns])
    )
    late = after["orders"].drop_duplicates("order_id").reset_index(drop=True)
    assert (late["updated_at"] >= before["orders"]["updated_at"]).all()


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("scale", 0),
        ("scale", -1.5),
        ("scale", "big"),
        ("scale", float("nan")),
        ("seed", -1),
        ("seed", 1.5),
        ("dirty_rate", -0.01),
        ("dirty_rate", 0.5),
        ("days", 119),
        ("days", 200.0),
        ("start", "2024-13-01"),
        ("start", "yesterday"),
        ("start", None),
    ],
)
def test_bad_arguments_are_named(tmp_path, argument, value):
    with pytest.raises(ValueError, match=argument):
        generate(tmp_path / "out", **{argument: value})
    assert not (tmp_path / "out").exists()


def test_only_the_table_files_are_replaced(tmp_path):
    folder = tmp_path / "nested" / "data"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("keep me")
    (folder / "orders.csv").write_text("stale")
    counts = generate(folder, scale=0.05, days=120, seed=3)
    assert (folder / "notes.txt").read_text() == "keep me"
    assert (folder / "orders.csv").read_text().startswith(",".join(COLUMNS["orders"]))
    assert sorted(p.name for p in folder.iterdir()) == sorted([*(f"{t}.csv" for t in TABLES), "notes.txt"])
    assert set(counts) == set(TABLES)
