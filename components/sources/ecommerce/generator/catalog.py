"""Stores and the product catalogue, with each product's launch and list-price history."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from components.sources.ecommerce.generator import settings as s
from components.sources.ecommerce.generator.timeline import DAY, Period


@dataclass(frozen=True)
class Catalog:
    """Stores and products, as tables and as the arrays the simulation reads."""

    stores: pd.DataFrame
    store_opened_day: np.ndarray
    store_weight: np.ndarray
    products: pd.DataFrame
    product_category: np.ndarray
    product_available_day: np.ndarray
    product_weight: np.ndarray
    initial_price: np.ndarray
    #: day index -> (product indices, new list price in cents), effective from that day's midnight.
    price_changes: dict[int, tuple[np.ndarray, np.ndarray]]


def _retail_price(cents: np.ndarray) -> np.ndarray:
    """Round to a shelf price ending in 99 cents, at least 0.99."""
    return np.maximum(99, np.round(cents / 100).astype(np.int64) * 100 - 1)


def build_stores(period: Period, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The fixed store network; one store opens during the period and one is refitted (renamed)."""
    opened_day = np.array(
        [int(o * period.days) if isinstance(o, float) else o for *_, o, _ in s.STORES], dtype=np.int64
    )
    opened_at = np.array([period.day_ts(d) for d in opened_day]) + rng.integers(
        8 * 3600, 10 * 3600, len(s.STORES)
    )
    names = [name for name, *_ in s.STORES]
    updated_at = opened_at.copy()
    refit_index, refit_fraction, refit_name = s.STORE_REFIT
    refit_day = int(refit_fraction * period.days)
    if refit_day > opened_day[refit_index]:
        names[refit_index] = refit_name
        updated_at[refit_index] = period.day_ts(refit_day) + 7 * 3600
    stores = pd.DataFrame(
        {
            "store_id": np.arange(1, len(s.STORES) + 1, dtype=np.int64),
            "store_name": names,
            "city": [city for _, city, *_ in s.STORES],
            "country": [country for _, _, country, *_ in s.STORES],
            "channel": [channel for *_, channel, _, _ in s.STORES],
            "opened_at": opened_at,
            "updated_at": updated_at,
        }
    )
    weight = np.array([w for *_, w in s.STORES], dtype=float)
    return stores, opened_day, weight


def _price_history(
    period: Period,
    available_day: np.ndarray,
    price: np.ndarray,
    popular: np.ndarray,
    rng: np.random.Generator,
) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """Draw list-price changes; returns changes by day, current prices and the day of each last change."""
    n = len(price)
    first = np.maximum(available_day, 1)
    exposure = (period.days - first) / period.days
    counts = rng.poisson(s.PRICE_CHANGES_PER_PERIOD * exposure)
    owner = np.repeat(np.arange(n), counts)
    day = first[owner] + np.floor(rng.random(owner.size) * (period.days - first[owner])).astype(np.int64)
    # A best seller that would keep its price all along is repriced once in the middle third.
    unchanged = popular[counts[popular] == 0]
    owner = np.concatenate([owner, unchanged])
    middle = period.days // 3 + np.floor(rng.random(unchanged.size) * (period.days // 3)).astype(np.int64)
    day = np.concatenate([day, middle])
    factor = np.exp(rng.normal(0.0, s.PRICE_CHANGE_SPREAD, owner.size))
    order = np.lexsort((day, owner))
    owner, day, factor = owner[order], day[order], factor[order]
    keep = np.ones(owner.size, dtype=bool)
    keep[1:] = (owner[1:] != owner[:-1]) | (day[1:] != day[:-1])
    owner, day, factor = owner[keep], day[keep], factor[keep]

    current = price.copy()
    new_price = np.empty(owner.size, dtype=np.int64)
    for i, (product, multiplier) in enumerate(zip(owner, factor, strict=True)):
        proposal = int(_retail_price(np.array([current[product] * multiplier]))[0])
        if proposal == current[product]:  # a change always moves the shelf price by at least one unit
            proposal += 100 if multiplier >= 1 or proposal < 199 else -100
        new_price[i] = current[product] = proposal
    last_change = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last_change, owner, day)
    changes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for d in np.unique(day):
        mask = day == d
        changes[int(d)] = (owner[mask], new_price[mask])
    return changes, current, last_change


def build_catalog(n_products: int, period: Period, rng: np.random.Generator) -> Catalog:
    """Stores plus `n_products` products spread over the categories."""
    stores, store_opened_day, store_weight = build_stores(period, rng)
    n_cat = len(s.CATEGORIES)
    base = np.tile(np.arange(n_cat), s.MIN_PRODUCTS_PER_CATEGORY_AT_START)
    rest = rng.choice(n_cat, size=n_products - base.size, p=np.asarray(s.CATEGORY_POPULARITY))
    category = np.concatenate([base, rest])

    launched = rng.random(n_products) < s.PRODUCT_LAUNCH_SHARE
    launched[: base.size] = False
    launch_day = np.floor(rng.random(n_products) * 0.8 * period.days).astype(np.int64)
    created_day = np.where(launched, launch_day, -rng.integers(30, 1000, n_products))
    created_at = period.start_ts + created_day * DAY + rng.integers(7 * 3600, 19 * 3600, n_products)
    available_day = np.where(launched, created_day + 1, 0)

    weight = np.exp(rng.normal(0.0, 0.9, n_products))
    weight[: base.size] += 3.0  # the starting lines are the established best sellers
    starting = np.arange(base.size)
    popular = np.array([starting[base == c][np.argmax(weight[starting[base == c]])] for c in range(n_cat)])

    median = np.array([s.CATEGORY_PRICE_CENTS[c][0] for c in s.CATEGORIES])[category]
    spread = np.array([s.CATEGORY_PRICE_CENTS[c][1] for c in s.CATEGORIES])[category]
    initial_price = _retail_price(median * np.exp(rng.normal(0.0, 1.0, n_products) * spread))
    changes, current_price, last_change = _price_history(period, available_day, initial_price, popular, rng)
    updated_at = np.where(last_change >= 0, period.start_ts + last_change * DAY, created_at)

    brands = [s.CATEGORY_BRANDS[s.CATEGORIES[c]] for c in category]
    brand = [options[rng.integers(len(options))] for options in brands]
    nouns = [s.CATEGORY_NOUNS[s.CATEGORIES[c]] for c in category]
    noun = [options[rng.integers(len(options))] for options in nouns]
    series = rng.choice(s.PRODUCT_SERIES, n_products)
    generation = rng.integers(1, 10, n_products)
    products = pd.DataFrame(
        {
            "product_id": np.arange(1, n_products + 1, dtype=np.int64),
            "product_name": [
                f"{b} {n} {x} {g}" for b, n, x, g in zip(brand, noun, series, generation, strict=True)
            ],
            "category": np.asarray(s.CATEGORIES)[category],
            "brand": brand,
            "list_price_cents": current_price,
            "created_at": created_at,
            "updated_at": updated_at,
        }
    )
    return Catalog(
        stores=stores,
        store_opened_day=store_opened_day,
        store_weight=store_weight,
        products=products,
        product_category=category,
        product_available_day=available_day,
        product_weight=weight,
        initial_price=initial_price,
        price_changes=changes,
    )
