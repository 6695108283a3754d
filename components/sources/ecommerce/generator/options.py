"""Validated arguments of one generator run."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from datetime import date, datetime

from components.sources.ecommerce.generator import settings as s


@dataclass(frozen=True)
class GenerationOptions:
    """Arguments of :func:`components.sources.ecommerce.generator.generate`, checked and normalised."""

    scale: float
    seed: int
    dirty_rate: float
    start: date
    days: int

    @property
    def n_customers(self) -> int:
        return max(s.MIN_CUSTOMERS, round(s.BASE_CUSTOMERS * self.scale))

    @property
    def n_products(self) -> int:
        return max(s.MIN_PRODUCTS, round(s.BASE_PRODUCTS * self.scale))


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def _integer(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _start_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"start must be a date in YYYY-MM-DD form, got {value!r}")


def parse_options(
    scale: object, seed: object, dirty_rate: object, start: object, days: object
) -> GenerationOptions:
    """Check every argument and return them normalised.

    Raises:
        ValueError: naming the first argument that is out of range or of the wrong type.
    """
    scale_value = _real("scale", scale)
    if scale_value <= 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    seed_value = _integer("seed", seed)
    if seed_value < 0:
        raise ValueError(f"seed must be >= 0, got {seed!r}")
    rate = _real("dirty_rate", dirty_rate)
    if not 0 <= rate < s.MAX_DIRTY_RATE:
        raise ValueError(f"dirty_rate must be in [0, {s.MAX_DIRTY_RATE}), got {dirty_rate!r}")
    days_value = _integer("days", days)
    if days_value < s.MIN_DAYS:
        raise ValueError(f"days must be >= {s.MIN_DAYS}, got {days!r}")
    return GenerationOptions(
        scale=scale_value, seed=seed_value, dirty_rate=rate, start=_start_date(start), days=days_value
    )
