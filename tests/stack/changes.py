"""New source rows appended to generated CSVs: new customer versions, a new customer, new and late orders."""

from __future__ import annotations

import csv
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


def _latest_timestamp(data_dir: Path) -> datetime:
    latest = datetime.min
    for path in data_dir.glob("*.csv"):
        fields, rows = _read(path)
        for name in (f for f in fields if f.endswith("_at")):
            for row in rows:
                if row[name]:
                    latest = max(latest, datetime.strptime(row[name], TS_FORMAT))
    return latest


def append_changes(data_dir: Path, changed: int = 3) -> SourceChanges:
    """Append to the CSVs in `data_dir`: a new version (next loyalty tier, new city) of the `changed`
    lowest customer ids, one new customer, one new order of two lines for each of them two days later,
    and a late status change (to `returned`) of the newest existing order.
    """
    changed_at = (_latest_timestamp(data_dir) + timedelta(days=1)).replace(hour=10, minute=0, second=0)
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
