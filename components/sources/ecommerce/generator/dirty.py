"""Dirty rows as real sources have them: malformed values, late arrivals and exact duplicates.

Keys, foreign keys and timestamps are never malformed, so ingestion keys and joins keep working.
Each kind of dirt hits a row independently with probability `rate`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.sources.ecommerce.generator.timeline import DAY


def _pick(rng: np.random.Generator, rate: float, n: int) -> np.ndarray:
    return np.flatnonzero(rng.random(n) < rate)


def _garble(df: pd.DataFrame, column: str, rows: np.ndarray, variants, rng: np.random.Generator) -> None:
    """Replace `column` at `rows` with one of `variants(value)` chosen at random."""
    if rows.size == 0:
        return
    choice = rng.integers(0, 1 << 30, rows.size)
    values = df[column].to_numpy(dtype=object).copy()
    for row, c in zip(rows, choice, strict=True):
        options = variants(values[row])
        values[row] = options[c % len(options)]
    df[column] = values


def _bad_email(value: str) -> tuple[str, ...]:
    return (
        value.replace("@", ""),
        value.replace("@", ".at."),
        f" {value}",
        value.replace("@", " @ "),
        value.upper(),
    )


def _bad_label(value: str) -> tuple[str, ...]:
    return (f" {value}", f"{value}  ", value.upper(), value.capitalize(), f" {value.capitalize()} ")


def _malform_customers(customers: pd.DataFrame, rate: float, rng: np.random.Generator) -> None:
    n = len(customers)
    _garble(customers, "email", _pick(rng, rate, n), _bad_email, rng)
    _garble(customers, "city", _pick(rng, rate, n), lambda v: (f"  {v}", f"{v} ", v.upper(), v.lower()), rng)
    _garble(customers, "loyalty_tier", _pick(rng, rate, n), _bad_label, rng)


def _late_arrivals(
    orders: pd.DataFrame, items: pd.DataFrame, rate: float, end_ts: int, rng: np.random.Generator
) -> None:
    """Orders (and their items) that reach the source days after they were placed."""
    ordered = orders["ordered_at"].to_numpy()
    arrival = ordered + rng.integers(2 * DAY, 15 * DAY, ordered.size)
    late = (
        (rng.random(ordered.size) < rate) & (arrival > orders["updated_at"].to_numpy()) & (arrival < end_ts)
    )
    orders["updated_at"] = np.where(late, arrival, orders["updated_at"].to_numpy())
    position = items["order_id"].to_numpy() - 1  # order ids are 1..n in row order before duplication
    items["updated_at"] = np.where(late[position], arrival[position], items["updated_at"].to_numpy())


def _malform_items(items: pd.DataFrame, rate: float, rng: np.random.Generator) -> None:
    n = len(items)
    bad_quantity = _pick(rng, rate, n)
    quantity = items["quantity"].to_numpy().copy()
    quantity[bad_quantity] = np.where(rng.random(bad_quantity.size) < 0.5, 0, -quantity[bad_quantity])
    items["quantity"] = quantity
    price = pd.array(items["unit_price_cents"].to_numpy(), dtype="Int64")
    price[_pick(rng, rate, n)] = pd.NA
    items["unit_price_cents"] = price


def _duplicate(df: pd.DataFrame, rate: float, rng: np.random.Generator) -> pd.DataFrame:
    """Repeat some rows right after themselves."""
    copies = 1 + (rng.random(len(df)) < rate)
    return df.iloc[np.repeat(np.arange(len(df)), copies)].reset_index(drop=True)


def add_dirt(
    tables: dict[str, pd.DataFrame], rate: float, end_ts: int, rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    """Return the tables with dirty rows mixed in (unchanged when `rate` is 0)."""
    if rate == 0:
        return tables
    tables = {name: df.copy() for name, df in tables.items()}
    _malform_customers(tables["customers"], rate, rng)
    _garble(tables["orders"], "status", _pick(rng, rate, len(tables["orders"])), _bad_label, rng)
    _late_arrivals(tables["orders"], tables["order_items"], rate, end_ts, rng)
    _malform_items(tables["order_items"], rate, rng)
    return {name: _duplicate(df, rate, rng) for name, df in tables.items()}
