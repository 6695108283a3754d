"""Order life cycle: placed -> shipped -> delivered (-> returned), or cancelled; status as of the end."""

from __future__ import annotations

import numpy as np

from components.sources.ecommerce.generator import settings as s

_HOUR = 3600


def latest_status(
    ordered_ts: np.ndarray, cancelled: np.ndarray, in_store: np.ndarray, end_ts: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Each order's status and the time of its last status change, as of `end_ts`.

    Args:
        ordered_ts: order times (epoch seconds).
        cancelled: orders the customer cancels before shipping.
        in_store: orders placed in a retail store (handed over and delivered within minutes).
        end_ts: the end of the period; events after it have not happened yet.
        rng: the random stream for delays.

    Returns:
        (status strings, updated_at epoch seconds).
    """
    n = ordered_ts.size
    ship_delay = np.where(
        in_store,
        rng.integers(5 * 60, 40 * 60, n),
        (rng.lognormal(np.log(18.0), 0.6, n) * _HOUR).astype(np.int64),
    )
    deliver_delay = np.where(
        in_store, rng.integers(60, 20 * 60, n), (rng.lognormal(np.log(60.0), 0.5, n) * _HOUR).astype(np.int64)
    )
    shipped = ordered_ts + np.maximum(ship_delay, 60)
    delivered = shipped + np.maximum(deliver_delay, 60)
    returned = delivered + rng.integers(2 * 24 * _HOUR, 25 * 24 * _HOUR, n)
    is_returned = rng.random(n) < s.RETURN_RATE
    cancelled_at = ordered_ts + rng.integers(10 * 60, 18 * _HOUR, n)

    status = np.full(n, "placed", dtype=object)
    updated = ordered_ts.copy()
    for name, when, applies in (
        ("shipped", shipped, ~cancelled),
        ("delivered", delivered, ~cancelled),
        ("returned", returned, ~cancelled & is_returned),
        ("cancelled", cancelled_at, cancelled),
    ):
        reached = applies & (when < end_ts)
        status[reached] = name
        updated[reached] = when[reached]
    return status, updated
