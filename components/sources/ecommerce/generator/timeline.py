"""The simulated period: its day grid, seasonality and timestamp formatting (seconds since the epoch, UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

from components.sources.ecommerce.generator import settings as s

DAY = 86_400


@dataclass(frozen=True)
class Period:
    """`days` whole days from midnight UTC of `start`; every event happens before :attr:`end_ts`."""

    start: date
    days: int

    @property
    def start_ts(self) -> int:
        return int(datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC).timestamp())

    @property
    def end_ts(self) -> int:
        return self.start_ts + self.days * DAY

    def day_ts(self, day: int) -> int:
        """Midnight of day index `day` (may be negative: before the period)."""
        return self.start_ts + day * DAY

    def dates(self) -> np.ndarray:
        return np.datetime64(self.start.isoformat(), "D") + np.arange(self.days)

    def season(self) -> np.ndarray:
        """Demand multiplier per day: weekly pattern times the month (November/December peak)."""
        dates = self.dates()
        weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        month = dates.astype("datetime64[M]").astype(np.int64) % 12
        return np.asarray(s.WEEKDAY_FACTOR)[weekday] * np.asarray(s.MONTH_FACTOR)[month]

    def peak_days(self) -> np.ndarray:
        """True on days in November or December."""
        month = self.dates().astype("datetime64[M]").astype(np.int64) % 12
        return month >= 10

    def month_starts(self) -> np.ndarray:
        """Day indices that fall on the first of a month."""
        dates = self.dates()
        return np.flatnonzero(dates == dates.astype("datetime64[M]").astype("datetime64[D]"))


def format_ts(seconds: np.ndarray) -> np.ndarray:
    """Format epoch seconds as `YYYY-MM-DD HH:MM:SS` strings."""
    text = np.asarray(seconds, dtype=np.int64).astype("datetime64[s]").astype("U19")
    return np.char.replace(text, "T", " ")
