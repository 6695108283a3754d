"""New source rows appended to generated CSVs: new customer versions, a new customer, new and late orders."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

TS_FORMAT = "%Y-%m-%d %H:%M:%S"
TIERS = ("bronze", "silver", "gold", "platinum")


@dataclass(frozen=True)
class SourceChanges:
    """What `append_changes` added; `changed_at` is after every timestamp already in the files."""

    changed_at: datetime
    changed_customers: tuple[int, ...]
    new_customer: int
    new_orders: tuple[int, ...]
    late_order: int


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _append(path: Path, rows: list[dict[str, str]]) -> None:
    fields, _ = _read(path)
    with path.open("a", newline="", encoding="utf-8") as fh:
        csv.DictWriter(fh, fieldnames=fields, lineterminator="\n").writerows(rows)


def _ts(value: datetime) -> str:
    return value.strftime(TS_FORMAT)


def append_row(path: Path, change: Callable[[list[dict[str, str]]], dict[str, str]]) -> None:
    """Append a copy of the file's first row with `change` applied and updated_at after every other row."""
    _, rows = _read(path)
    latest = max(datetime.strptime(row["updated_at"], TS_FORMAT) for row in rows) + timedelta(days=1)
    row = {**rows[0], **change(rows), "updated_at": latest.strftime(TS_FORMAT)}
    _append(path, [row])


#: The dbt tests `append_invalid_rows` makes fail.
INVALID_ROW_TESTS = ("accepted_values_stg_orders_status", "accepted_values_stg_customers_loyalty_tier")


def append_invalid_rows(data_dir: Path) -> None:
    """Append a customer version with an unknown loyalty tier and a new order with an unknown status."""
    append_row(data_dir / "customers.csv", lambda rows: {"loyalty_tier": "diamond"})
    append_row(
        data_dir / "orders.csv",
        lambda rows: {"order_id": str(max(int(r["order_id"]) for r in rows) + 1), "status": "teleported"},
    )


def _timestamp_bounds(data_dir: Path) -> tuple[datetime, datetime]:
    """The earliest and the latest value of any `*_at` column of the CSVs in `data_dir`."""
    values = []
    for path in data_dir.glob("*.csv"):
        fields, rows = _read(path)
        for name in (f for f in fields if f.endswith("_at")):
            values.extend(datetime.strptime(row[name], TS_FORMAT) for row in rows if row[name])
    return min(values), max(values)


def append_changes(data_dir: Path, changed: int = 3) -> SourceChanges:
    """Append to the CSVs in `data_dir`: a new version (next loyalty tier, new city) of the `changed`
    lowest customer ids, one new customer, one new order of two lines for each of them two days later,
    and a late status change (to `returned`) of the newest existing order.
    """
    changed_at = (_timestamp_bounds(data_dir)[1] + timedelta(days=1)).replace(hour=10, minute=0, second=0)
    ordered_at = changed_at + timedelta(days=2)

    _, customers = _read(data_dir / "customers.csv")
    latest: dict[int, dict[str, str]] = {}
    for row in customers:
        customer_id = int(row["customer_id"])
        if customer_id not in latest or row["updated_at"] >= latest[customer_id]["updated_at"]:
            latest[customer_id] = row
    customer_ids = sorted(latest)[:changed]
    new_customer = max(latest) + 1
    versions = []
    for customer_id in customer_ids:
        tier = latest[customer_id]["loyalty_tier"].strip().lower()
        next_tier = TIERS[(TIERS.index(tier) + 1) % len(TIERS)]
        versions.append(
            {
                **latest[customer_id],
                "loyalty_tier": next_tier,
                "city": "Utrecht",
                "updated_at": _ts(changed_at),
            }
        )
    versions.append(
        {
            "customer_id": str(new_customer), "email": "noor.visser@example.com", "first_name": "Noor",
            "last_name": "Visser", "city": "Utrecht", "country": "Netherlands", "loyalty_tier": "bronze",
            "signup_at": _ts(changed_at), "updated_at": _ts(changed_at),
        }
    )  # fmt: skip
    _append(data_dir / "customers.csv", versions)

    _, orders = _read(data_dir / "orders.csv")
    _, stores = _read(data_dir / "stores.csv")
    newest = max(orders, key=lambda r: (int(r["order_id"]), r["updated_at"]))
    late = {**newest, "status": "returned", "updated_at": _ts(ordered_at)}
    first_order = max(int(r["order_id"]) for r in orders) + 1
    buyers = [*customer_ids, new_customer]
    new_orders = []
    for offset, customer_id in enumerate(buyers):
        at = _ts(ordered_at + timedelta(hours=offset))
        new_orders.append(
            {
                "order_id": str(first_order + offset), "customer_id": str(customer_id),
                "store_id": stores[0]["store_id"], "ordered_at": at, "status": "placed", "updated_at": at,
            }
        )  # fmt: skip
    _append(data_dir / "orders.csv", [*new_orders, late])

    _, items = _read(data_dir / "order_items.csv")
    _, products = _read(data_dir / "products.csv")
    next_item = max(int(r["order_item_id"]) for r in items) + 1
    lines = []
    for order in new_orders:
        for quantity, product in enumerate(products[:2], start=1):
            lines.append(
                {
                    "order_item_id": str(next_item + len(lines)), "order_id": order["order_id"],
                    "product_id": product["product_id"], "quantity": str(quantity),
                    "unit_price_cents": product["list_price_cents"],
                    "discount_cents": str(50 * (quantity - 1)), "updated_at": order["updated_at"],
                }
            )  # fmt: skip
    _append(data_dir / "order_items.csv", lines)

    return SourceChanges(
        changed_at=changed_at,
        changed_customers=tuple(customer_ids),
        new_customer=new_customer,
        new_orders=tuple(int(o["order_id"]) for o in new_orders),
        late_order=int(newest["order_id"]),
    )


@dataclass(frozen=True)
class LateRows:
    """What `append_late_rows` added: rows whose updated_at is at or before what was loaded already."""

    late_version_customer: int
    backfilled_order: int
    corrected_order: int
    old_new_product: int
    old_new_line: int


def append_late_rows(data_dir: Path) -> LateRows:
    """Append rows no updated_at cursor would see, to the CSVs in `data_dir`.

    A version of a customer recorded between its first two versions; a backfilled copy of the earliest
    order (a new id, a minute later) with one line; a correction of another order's status that keeps its
    updated_at (the corrected row replaces the original in the file); and a new product older than every
    timestamp in the files, sold on the backfilled order.
    """
    earliest = _timestamp_bounds(data_dir)[0]
    _, customers = _read(data_dir / "customers.csv")
    by_customer: dict[str, list[dict[str, str]]] = {}
    for row in customers:
        by_customer.setdefault(row["customer_id"], []).append(row)
    versions = next(sorted(v, key=lambda r: r["updated_at"]) for v in by_customer.values() if len(v) >= 2)
    first, second = (datetime.strptime(v["updated_at"], TS_FORMAT) for v in versions[:2])
    _append(
        data_dir / "customers.csv",
        [{**versions[0], "city": "Late City", "updated_at": _ts(first + (second - first) / 2)}],
    )

    _, products = _read(data_dir / "products.csv")
    product_id = max(int(p["product_id"]) for p in products) + 1
    old = _ts(earliest - timedelta(days=1))
    _append(
        data_dir / "products.csv",
        [{**products[0], "product_id": str(product_id), "created_at": old, "updated_at": old}],
    )

    fields, orders = _read(data_dir / "orders.csv")
    source = min(orders, key=lambda r: (r["ordered_at"], int(r["order_id"])))
    order_id = max(int(o["order_id"]) for o in orders) + 1
    at = _ts(datetime.strptime(source["ordered_at"], TS_FORMAT) + timedelta(minutes=1))
    once = Counter(o["order_id"] for o in orders)
    corrected = next(
        o for o in orders if o["status"] == "delivered" and once[o["order_id"]] == 1 and o is not source
    )
    rows = [({**o, "status": "returned"} if o is corrected else o) for o in orders]
    backfilled = {**source, "order_id": str(order_id), "ordered_at": at, "status": "delivered"}
    rows.append({**backfilled, "updated_at": at})
    with (data_dir / "orders.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    _, items = _read(data_dir / "order_items.csv")
    item_id = max(int(i["order_item_id"]) for i in items) + 1
    line = {
        "order_item_id": str(item_id), "order_id": str(order_id), "product_id": str(product_id),
        "quantity": "1", "unit_price_cents": products[0]["list_price_cents"], "discount_cents": "0",
        "updated_at": at,
    }  # fmt: skip
    _append(data_dir / "order_items.csv", [line])
    return LateRows(
        late_version_customer=int(versions[0]["customer_id"]),
        backfilled_order=order_id,
        corrected_order=int(corrected["order_id"]),
        old_new_product=product_id,
        old_new_line=item_id,
    )
