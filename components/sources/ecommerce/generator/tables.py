"""Turn the simulated business into the five source tables (timestamps still as epoch seconds)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.sources.ecommerce.generator import settings as s
from components.sources.ecommerce.generator.business import Sales
from components.sources.ecommerce.generator.catalog import Catalog
from components.sources.ecommerce.generator.fulfilment import latest_status
from components.sources.ecommerce.generator.population import Population
from components.sources.ecommerce.generator.timeline import Period

#: Column order of each source file, as in the data contract.
COLUMNS = {
    "customers": (
        "customer_id", "email", "first_name", "last_name", "city", "country", "loyalty_tier", "signup_at",
        "updated_at",
    ),
    "products": (
        "product_id", "product_name", "category", "brand", "list_price_cents", "created_at", "updated_at",
    ),
    "stores": ("store_id", "store_name", "city", "country", "channel", "opened_at", "updated_at"),
    "orders": ("order_id", "customer_id", "store_id", "ordered_at", "status", "updated_at"),
    "order_items": (
        "order_item_id", "order_id", "product_id", "quantity", "unit_price_cents", "discount_cents",
        "updated_at",
    ),
}  # fmt: skip
#: Key columns; rows are written sorted by key, then updated_at.
KEYS = {
    "customers": ("customer_id",),
    "products": ("product_id",),
    "stores": ("store_id",),
    "orders": ("order_id",),
    "order_items": ("order_item_id",),
}


def _strictly_increasing(customer: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Nudge equal timestamps of one customer apart by a second so versions never share a key."""
    ts = ts.copy()
    while True:
        clash = np.flatnonzero((customer[1:] == customer[:-1]) & (ts[1:] <= ts[:-1])) + 1
        if clash.size == 0:
            return ts
        ts[clash] = ts[clash - 1] + 1


def customer_versions(people: Population, sales: Sales) -> pd.DataFrame:
    """The CRM change log: a sign-up row, then one row per email change, move or loyalty-tier change."""
    n = people.size
    email, moves = people.email_changes, people.moves
    signup = np.arange(n)
    parts = (
        # (customer, ts, email, city index, tier index); -1 / None = unchanged by this event
        (signup, people.signup_ts, people.email.astype(object), people.home_city, np.zeros(n, np.int64)),
        (
            email.customer,
            email.ts,
            email.value,
            np.full(email.customer.size, -1),
            np.full(email.customer.size, -1),
        ),
        (
            moves.customer,
            moves.ts,
            np.full(moves.customer.size, None),
            moves.value,
            np.full(moves.customer.size, -1),
        ),
        (
            sales.tier_customer,
            sales.tier_ts,
            np.full(sales.tier_customer.size, None),
            np.full(sales.tier_customer.size, -1),
            sales.tier_value,
        ),
    )
    customer, ts, email_value, city_index, tier_index = (
        np.concatenate([part[i] for part in parts]) for i in range(5)
    )
    kind = np.concatenate([np.full(part[0].size, k) for k, part in enumerate(parts)])
    order = np.lexsort((kind, ts, customer))
    customer, ts = customer[order], ts[order]
    rows = np.arange(customer.size)

    def carried(values: np.ndarray, changed: np.ndarray) -> np.ndarray:
        """Forward-fill within each customer (whose first row, the sign-up, sets every attribute)."""
        return values[np.maximum.accumulate(np.where(changed, rows, 0))]

    email_value, city_index, tier_index = email_value[order], city_index[order], tier_index[order]
    email_value = carried(email_value, pd.notna(email_value))
    city_index = carried(city_index, city_index >= 0)
    tier_index = carried(tier_index, tier_index >= 0)

    cities = np.asarray([c for c, _, _ in s.CITIES], dtype=object)
    countries = np.asarray([c for _, c, _ in s.CITIES], dtype=object)
    return pd.DataFrame(
        {
            "customer_id": customer + 1,
            "email": email_value,
            "first_name": people.first_name[customer].astype(object),
            "last_name": people.last_name[customer].astype(object),
            "city": cities[city_index],
            "country": countries[city_index],
            "loyalty_tier": np.asarray(s.TIERS, dtype=object)[tier_index],
            "signup_at": people.signup_ts[customer],
            "updated_at": _strictly_increasing(customer, ts),
        }
    )


def order_tables(
    catalog: Catalog, sales: Sales, period: Period, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Orders with their status as of the period end, and their items (written when the order was placed)."""
    in_store = (catalog.stores["channel"].to_numpy() == "retail")[sales.order_store - 1]
    status, updated = latest_status(sales.order_ts, sales.order_cancelled, in_store, period.end_ts, rng)
    n_orders, n_items = sales.order_ts.size, sales.item_order.size
    orders = pd.DataFrame(
        {
            "order_id": np.arange(1, n_orders + 1, dtype=np.int64),
            "customer_id": sales.order_customer + 1,
            "store_id": sales.order_store,
            "ordered_at": sales.order_ts,
            "status": status,
            "updated_at": updated,
        }
    )
    items = pd.DataFrame(
        {
            "order_item_id": np.arange(1, n_items + 1, dtype=np.int64),
            "order_id": sales.item_order + 1,
            "product_id": sales.item_product,
            "quantity": sales.item_quantity,
            "unit_price_cents": sales.item_unit_price,
            "discount_cents": sales.item_discount,
            "updated_at": sales.order_ts[sales.item_order],
        }
    )
    return orders, items


def sort_rows(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Rows in key order, then by updated_at; ties keep their order (duplicates stay side by side)."""
    columns = [*KEYS[name], "updated_at"]
    order = np.lexsort([df[c].to_numpy() for c in reversed(columns)])
    return df.iloc[order].reset_index(drop=True)[list(COLUMNS[name])]
