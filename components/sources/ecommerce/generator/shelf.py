"""What can be bought on a given day: available products per category and their current list prices."""

from __future__ import annotations

import numpy as np

from components.sources.ecommerce.generator.catalog import Catalog


class Shelf:
    """Tracks launches and price changes day by day and draws products by popularity within a category."""

    def __init__(self, catalog: Catalog, n_categories: int) -> None:
        self._catalog = catalog
        self._members = [np.flatnonzero(catalog.product_category == c) for c in range(n_categories)]
        self.price = catalog.initial_price.copy()
        self._day = None
        self._cumulative: list[np.ndarray] = []

    def open(self, day: int) -> None:
        """Apply the price changes effective at midnight of `day` and refresh availability."""
        change = self._catalog.price_changes.get(day)
        if change is not None:
            self.price[change[0]] = change[1]
        available = self._catalog.product_available_day <= day
        if self._day is None or np.any(self._catalog.product_available_day == day):
            weight = self._catalog.product_weight * available
            self._cumulative = [np.cumsum(weight[m]) for m in self._members]
        self._day = day

    def draw(self, category: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One product index per entry of `category`, weighted by popularity among available products."""
        product = np.empty(category.size, dtype=np.int64)
        u = rng.random(category.size)
        for c, (members, cumulative) in enumerate(zip(self._members, self._cumulative, strict=True)):
            mask = category == c
            if mask.any():
                pick = np.searchsorted(cumulative, u[mask] * cumulative[-1], side="right")
                product[mask] = members[np.minimum(pick, members.size - 1)]
        return product
