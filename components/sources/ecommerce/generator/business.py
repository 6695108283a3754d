"""Day-by-day simulation of the shop: engagement, dormancy and win-back, orders, items and loyalty tiers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from components.sources.ecommerce.generator import settings as s
from components.sources.ecommerce.generator.catalog import Catalog
from components.sources.ecommerce.generator.population import Population
from components.sources.ecommerce.generator.shelf import Shelf
from components.sources.ecommerce.generator.timeline import DAY, Period


@dataclass(frozen=True)
class Sales:
    """Everything the simulation produced; orders sorted by time, items by order then line."""

    order_customer: np.ndarray
    order_store: np.ndarray
    order_ts: np.ndarray
    order_cancelled: np.ndarray
    item_order: np.ndarray
    item_product: np.ndarray
    item_quantity: np.ndarray
    item_unit_price: np.ndarray
    item_discount: np.ndarray
    tier_customer: np.ndarray
    tier_ts: np.ndarray
    tier_value: np.ndarray


def _store_routes(catalog: Catalog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per customer city: its retail store (-1 if none) and main online store; plus extra online stores."""
    stores = catalog.stores
    retail = np.full(len(s.CITIES), -1, dtype=np.int64)
    online = np.zeros(len(s.CITIES), dtype=np.int64)
    primary = {0, *s.ONLINE_STORE_BY_COUNTRY.values()}
    for i, (city, country, _) in enumerate(s.CITIES):
        match = np.flatnonzero(
            (stores["city"] == city).to_numpy() & (stores["channel"] == "retail").to_numpy()
        )
        retail[i] = match[0] if match.size else -1
        online[i] = s.ONLINE_STORE_BY_COUNTRY.get(country, 0)
    extra = np.array(
        [i for i in range(len(stores)) if stores["channel"].iat[i] == "online" and i not in primary],
        dtype=np.int64,
    )
    return retail, online, extra


class _Ledger:
    """Collects orders and items as the days go by."""

    def __init__(self) -> None:
        self.orders: list[tuple[np.ndarray, ...]] = []
        self.items: list[tuple[np.ndarray, ...]] = []
        self.tiers: list[tuple[np.ndarray, ...]] = []
        self.n_orders = 0

    def add_orders(self, orders: tuple[np.ndarray, ...], items: tuple[np.ndarray, ...]) -> None:
        """Record one day's orders (customer, store_id, ts, cancelled) and items (order in the day, ...)."""
        owner, *rest = items
        self.orders.append(orders)
        self.items.append((owner + self.n_orders, *rest))
        self.n_orders += orders[0].size

    @staticmethod
    def _columns(batches: list[tuple[np.ndarray, ...]], width: int) -> list[np.ndarray]:
        if not batches:
            return [np.empty(0, dtype=np.int64) for _ in range(width)]
        return [np.concatenate(column) for column in zip(*batches, strict=True)]

    def close(self) -> Sales:
        """All orders sorted by time (ties by customer) and their items, re-pointed at the sorted orders."""
        o = self._columns(self.orders, 4)
        it = self._columns(self.items, 5)
        tr = self._columns(self.tiers, 3)
        order = np.lexsort((o[0], o[2]))
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        item_order = rank[it[0]]
        item_sort = np.argsort(item_order, kind="stable")
        return Sales(
            order_customer=o[0][order],
            order_store=o[1][order],
            order_ts=o[2][order],
            order_cancelled=o[3][order],
            item_order=item_order[item_sort],
            item_product=it[1][item_sort],
            item_quantity=it[2][item_sort],
            item_unit_price=it[3][item_sort],
            item_discount=it[4][item_sort],
            tier_customer=tr[0],
            tier_ts=tr[1],
            tier_value=tr[2],
        )


class _Routing:
    """Sends each order to a store: the home city's retail store, the country's online store or another."""

    def __init__(self, catalog: Catalog) -> None:
        self.retail_of_city, self.online_of_city, self.extra_online = _store_routes(catalog)
        self.extra_weight = catalog.store_weight[self.extra_online]
        self.opened_day = catalog.store_opened_day

    def route(
        self, day: int, home: np.ndarray, retail_affinity: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Store index per order, only among stores open before `day`."""
        k = home.size
        retail = self.retail_of_city[home]
        in_store = (retail >= 0) & (rng.random(k) < retail_affinity)
        store = np.where(in_store, retail, self.online_of_city[home])
        weight = self.extra_weight * (self.opened_day[self.extra_online] < day)
        share = weight.sum()
        to_extra = ~in_store & (rng.random(k) < share / (1 + share))
        if to_extra.any():
            store[to_extra] = self.extra_online[rng.choice(weight.size, to_extra.sum(), p=weight / share)]
        return np.where(self.opened_day[store] < day, store, self.online_of_city[home])


def _order_seconds(
    day: int, buyers: np.ndarray, people: Population, signup_second: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Second of the day of each order; on the sign-up day, after signing up."""
    k = buyers.size
    hour_p = np.asarray(s.HOUR_WEIGHTS) / np.sum(s.HOUR_WEIGHTS)
    second = rng.choice(24, size=k, p=hour_p) * 3600 + rng.integers(0, 3600, k)
    joined = signup_second[buyers]
    after_signup = np.minimum(joined + 60 + rng.random(k) * (DAY - 61 - joined), DAY - 1).astype(np.int64)
    return np.where(people.signup_day[buyers] == day, np.maximum(after_signup, joined), second)


def _baskets(
    buyers: np.ndarray, people: Population, shelf: Shelf, peak: bool, rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """Order lines: (order in the day, product index, quantity, unit price, discount), all in cents."""
    lines = 1 + np.minimum(rng.poisson(s.EXTRA_ITEMS_MEAN, buyers.size), s.MAX_ITEMS_PER_ORDER - 1)
    owner = np.repeat(np.arange(buyers.size), lines)
    cdf = people.category_cdf[buyers[owner]]
    category = np.minimum((rng.random(owner.size)[:, None] > cdf).sum(axis=1), len(s.CATEGORIES) - 1)
    product = shelf.draw(category, rng)
    quantity = 1 + rng.poisson(np.asarray(s.CATEGORY_EXTRA_UNITS)[category])
    price = shelf.price[product]
    discounted = rng.random(owner.size) < (s.DISCOUNT_SHARE_PEAK if peak else s.DISCOUNT_SHARE)
    rate = np.where(discounted, rng.uniform(*s.DISCOUNT_RANGE, owner.size), 0.0)
    discount = np.floor(rate * quantity * price).astype(np.int64)  # always below quantity * price
    return owner, product, quantity, price, discount


def _reviewed_tiers(tier: np.ndarray, trailing: np.ndarray) -> np.ndarray:
    """Tier each customer earns from trailing spend: upgrades at once, downgrades one level per review."""
    target = np.searchsorted(np.asarray(s.TIER_THRESHOLDS_CENTS), trailing, side="right") - 1
    return np.where(target > tier, target, np.maximum(tier - 1, target))


def _dormancy_hazard(
    people: Population, gap: np.ndarray, tier: np.ndarray, n_orders: np.ndarray
) -> np.ndarray:
    """Daily chance of going dormant: rises with long gaps, bronze tier and single-category buying."""
    log_hazard = (
        s.DORMANCY_GAP_COEF * np.minimum(gap, s.DORMANCY_GAP_CAP_DAYS) / 30
        + s.DORMANCY_BRONZE_COEF * (tier == 0)
        + s.DORMANCY_FOCUS_COEF * (people.focus - 0.5)
        - s.DORMANCY_TIER_COEF * tier
        - s.DORMANCY_HISTORY_COEF * np.log1p(n_orders)
    )
    return s.DORMANCY_BASE_HAZARD * np.exp(log_hazard)


def simulate(people: Population, catalog: Catalog, period: Period, rng: np.random.Generator) -> Sales:
    """Run the shop over the period and return its orders, order items and loyalty-tier changes."""
    n = people.size
    season, peak = period.season(), period.peak_days()
    review_days = set(period.month_starts().tolist())
    moves = {int(d): np.flatnonzero(people.moves.day == d) for d in np.unique(people.moves.day)}
    review_offset = rng.integers(0, 3600, n)
    signup_second = people.signup_ts - period.start_ts - people.signup_day * DAY
    routing = _Routing(catalog)
    shelf = Shelf(catalog, len(s.CATEGORIES))

    city = people.home_city.copy()
    engagement = people.engagement_mean + s.ENGAGEMENT_NEW_CUSTOMER
    dormant = np.zeros(n, dtype=bool)
    last_order_day = people.signup_day.astype(float)
    n_orders = np.zeros(n, dtype=np.int64)
    tier = np.zeros(n, dtype=np.int64)
    trailing = np.zeros(n, dtype=np.int64)
    spend_by_day: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    ledger = _Ledger()

    for t in range(period.days):
        day_ts = period.day_ts(t)
        shelf.open(t)
        if t in moves:
            city[people.moves.customer[moves[t]]] = people.moves.value[moves[t]]
        if t - s.TIER_WINDOW_DAYS in spend_by_day:
            who, amount = spend_by_day.pop(t - s.TIER_WINDOW_DAYS)
            trailing[who] -= amount
        if t in review_days:
            review_ts = day_ts + s.TIER_REVIEW_SECOND + review_offset
            new_tier = _reviewed_tiers(tier, trailing)
            changed = np.flatnonzero((people.signup_ts < review_ts) & (new_tier != tier))
            ledger.tiers.append((changed, review_ts[changed], new_tier[changed]))
            tier[changed] = new_tier[changed]

        alive = people.signup_day <= t
        drift = (
            s.ENGAGEMENT_REVERSION * (people.engagement_mean - engagement)
            + s.ENGAGEMENT_NOISE * rng.standard_normal(n)
            - s.ENGAGEMENT_DECAY
        )
        engagement += np.where(alive, drift, 0.0)
        u = rng.random(n)
        leaving = alive & ~dormant & (u < _dormancy_hazard(people, t - last_order_day, tier, n_orders))
        returning = dormant & (u < s.WIN_BACK_RATE * season[t])
        dormant = (dormant | leaving) & ~returning
        engagement[returning] = people.engagement_mean[returning] + s.ENGAGEMENT_WIN_BACK

        p = np.minimum(people.base_rate * np.exp(engagement) * season[t], s.MAX_DAILY_ORDER_PROB)
        buyers = np.flatnonzero(alive & ~dormant & (rng.random(n) < p))
        if buyers.size == 0:
            continue
        ts = day_ts + _order_seconds(t, buyers, people, signup_second, rng)
        store = routing.route(t, city[buyers], people.retail_affinity[buyers], rng)
        cancelled = rng.random(buyers.size) < s.CANCEL_RATE
        owner, product, quantity, price, discount = _baskets(buyers, people, shelf, bool(peak[t]), rng)
        ledger.add_orders((buyers, store + 1, ts, cancelled), (owner, product + 1, quantity, price, discount))

        net = np.bincount(owner, weights=quantity * price - discount, minlength=buyers.size).astype(np.int64)
        who, amount = buyers[~cancelled], net[~cancelled]
        spend_by_day[t] = (who, amount)
        trailing[who] += amount
        last_order_day[who] = t
        n_orders[who] += 1
        engagement[who] += s.ENGAGEMENT_HABIT

    return ledger.close()
