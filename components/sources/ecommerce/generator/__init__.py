"""Deterministic, seeded generator of the e-commerce source data (the five CSV files of the data contract)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from components.sources.ecommerce.generator import settings
from components.sources.ecommerce.generator.business import simulate
from components.sources.ecommerce.generator.catalog import build_catalog
from components.sources.ecommerce.generator.dirty import add_dirt
from components.sources.ecommerce.generator.options import GenerationOptions, parse_options
from components.sources.ecommerce.generator.population import build_population
from components.sources.ecommerce.generator.tables import COLUMNS, customer_versions, order_tables, sort_rows
from components.sources.ecommerce.generator.timeline import Period
from components.sources.ecommerce.generator.writer import write_tables

__all__ = ["COLUMNS", "GenerationOptions", "build_tables", "generate", "parse_options", "settings"]


def build_tables(options: GenerationOptions) -> dict[str, pd.DataFrame]:
    """Simulate the business and return the five source tables in file order (timestamps as epoch seconds).

    Each part draws from its own child of the seed, so the dirty rows never change the clean business.
    """
    period = Period(options.start, options.days)
    catalog_rng, people_rng, sales_rng, fulfilment_rng, dirt_rng = (
        np.random.default_rng(child) for child in np.random.SeedSequence(options.seed).spawn(5)
    )
    catalog = build_catalog(options.n_products, period, catalog_rng)
    people = build_population(options.n_customers, period, people_rng)
    sales = simulate(people, catalog, period, sales_rng)
    orders, items = order_tables(catalog, sales, period, fulfilment_rng)
    tables = {
        "customers": customer_versions(people, sales),
        "products": catalog.products,
        "stores": catalog.stores,
        "orders": orders,
        "order_items": items,
    }
    tables = add_dirt(tables, options.dirty_rate, period.end_ts, dirt_rng)
    return {name: sort_rows(name, tables[name]) for name in COLUMNS}


def generate(
    out_dir: str | Path,
    scale: float = 1.0,
    seed: int = 42,
    dirty_rate: float = 0.02,
    start: str | date = "2024-01-01",
    days: int = 540,
) -> dict[str, int]:
    """Generate the source data and write `customers`, `products`, `stores`, `orders` and `order_items` CSVs.

    The same arguments always produce byte-identical files.

    Args:
        out_dir: folder for the CSV files; created if missing. Only the five table files are replaced.
        scale: size factor (> 0); 1.0 is 1,000 customers, about 150 products and 8 stores.
        seed: non-negative random seed.
        dirty_rate: probability (0 <= rate < 0.5) of each kind of dirty row; 0 writes clean data.
        start: first day of the period, `YYYY-MM-DD` (UTC).
        days: length of the period in days (>= 120).

    Returns:
        Rows written per table.

    Raises:
        ValueError: an argument is out of range or malformed (the message names it).
    """
    options = parse_options(scale, seed, dirty_rate, start, days)
    return write_tables(Path(out_dir), build_tables(options))
