"""Customers: sign-ups, names, latent traits and the scheduled email and address changes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from components.sources.ecommerce.generator import settings as s
from components.sources.ecommerce.generator.timeline import DAY, Period

_EMAIL_PATTERNS = 3
_EMAIL_STYLES = _EMAIL_PATTERNS * len(s.EMAIL_DOMAINS)


@dataclass(frozen=True)
class ProfileChanges:
    """Scheduled changes of one attribute: who, when (day index and timestamp) and the new value."""

    customer: np.ndarray
    day: np.ndarray
    ts: np.ndarray
    value: np.ndarray


@dataclass(frozen=True)
class Population:
    """All customers, indexed 0..size-1 in sign-up order (customer_id = index + 1)."""

    signup_ts: np.ndarray
    signup_day: np.ndarray
    first_name: np.ndarray
    last_name: np.ndarray
    email: np.ndarray
    home_city: np.ndarray
    engagement_mean: np.ndarray
    base_rate: np.ndarray
    category_cdf: np.ndarray
    focus: np.ndarray
    retail_affinity: np.ndarray
    email_changes: ProfileChanges
    moves: ProfileChanges

    @property
    def size(self) -> int:
        return len(self.signup_ts)


def email_address(first: str, last: str, customer_id: int, style: int) -> str:
    """The address a customer uses in one of the :data:`_EMAIL_STYLES` styles."""
    pattern, domain = divmod(style, len(s.EMAIL_DOMAINS))
    first, last = first.lower(), last.lower().replace(" ", "")
    local = (f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}")[pattern]
    return f"{local}{customer_id}@{s.EMAIL_DOMAINS[domain]}"


def _schedule(
    per_period: float, signup_day: np.ndarray, period: Period, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson-many change days per customer after sign-up; sorted by customer then time."""
    exposure = np.clip((period.days - 1 - signup_day) / period.days, 0.0, None)
    counts = rng.poisson(per_period * exposure)
    customer = np.repeat(np.arange(signup_day.size), counts)
    low = signup_day[customer] + 1
    day = low + np.floor(rng.random(customer.size) * (period.days - low)).astype(np.int64)
    ts = period.start_ts + day * DAY + rng.integers(6 * 3600, 23 * 3600, customer.size)
    order = np.lexsort((ts, customer))
    return customer[order], day[order], ts[order]


def _category_preferences(n: int, rng: np.random.Generator) -> np.ndarray:
    """Each customer's share of spend per category; low concentration makes single-category buyers."""
    concentration = np.exp(rng.normal(-0.3, 1.1, n))
    shape = concentration[:, None] * np.asarray(s.CATEGORY_POPULARITY)[None, :] * len(s.CATEGORIES)
    draws = rng.gamma(shape)
    favourite = rng.choice(len(s.CATEGORIES), size=n, p=np.asarray(s.CATEGORY_POPULARITY))
    draws[np.arange(n), favourite] += 1e-9
    return draws / draws.sum(axis=1, keepdims=True)


def build_population(n: int, period: Period, rng: np.random.Generator) -> Population:
    """Draw `n` customers who sign up over the period (a first cohort in its first week)."""
    initial = rng.random(n) < s.INITIAL_COHORT_SHARE
    signup_offset = np.where(initial, rng.random(n) * 7 * DAY, rng.random(n) * (period.days - 1) * DAY)
    signup_ts = np.sort(period.start_ts + signup_offset.astype(np.int64))
    signup_day = (signup_ts - period.start_ts) // DAY

    first = np.asarray(s.FIRST_NAMES)[rng.integers(len(s.FIRST_NAMES), size=n)]
    last = np.asarray(s.LAST_NAMES)[rng.integers(len(s.LAST_NAMES), size=n)]
    city_weight = np.array([w for *_, w in s.CITIES], dtype=float)
    home_city = rng.choice(len(s.CITIES), size=n, p=city_weight / city_weight.sum())

    preferences = _category_preferences(n, rng)
    style = rng.integers(_EMAIL_STYLES, size=n)
    email = np.array(
        [
            email_address(f, la, i + 1, st)
            for i, (f, la, st) in enumerate(zip(first, last, style, strict=True))
        ]
    )

    who, day, ts = _schedule(s.EMAIL_CHANGES_PER_PERIOD, signup_day, period, rng)
    step = rng.integers(1, _EMAIL_STYLES, who.size)
    new_email = np.empty(who.size, dtype=object)
    current_style = style.copy()
    for i, c in enumerate(who):
        current_style[c] = (current_style[c] + step[i]) % _EMAIL_STYLES
        new_email[i] = email_address(first[c], last[c], int(c) + 1, int(current_style[c]))
    email_changes = ProfileChanges(who, day, ts, new_email)

    who, day, ts = _schedule(s.CITY_MOVES_PER_PERIOD, signup_day, period, rng)
    step = rng.integers(1, len(s.CITIES), who.size)
    new_city = np.empty(who.size, dtype=np.int64)
    current_city = home_city.copy()
    for i, c in enumerate(who):
        current_city[c] = (current_city[c] + step[i]) % len(s.CITIES)
        new_city[i] = current_city[c]
    moves = ProfileChanges(who, day, ts, new_city)

    return Population(
        signup_ts=signup_ts,
        signup_day=signup_day,
        first_name=first,
        last_name=last,
        email=email,
        home_city=home_city,
        engagement_mean=rng.normal(0.0, s.ENGAGEMENT_SPREAD, n),
        base_rate=s.BASE_DAILY_RATE * np.exp(rng.normal(0.0, s.BASE_RATE_SPREAD, n)),
        category_cdf=np.cumsum(preferences, axis=1),
        focus=preferences.max(axis=1),
        retail_affinity=rng.beta(1.2, 2.0, n),
        email_changes=email_changes,
        moves=moves,
    )
