"""Drift statistics of one column between a reference window and a current window: PSI, NULL shares, KS.

PSI (population stability index) compares the share of rows in each bin: `sum((c - r) * ln(c / r))`.
Numeric bins are the deciles of the reference window; each category is a bin; NULL is always a bin of
its own, so a column that starts arriving empty drifts too. Shares are floored at `SHARE_FLOOR` so an
empty bin does not make the index infinite. Usual reading: below 0.1 stable, 0.1-0.2 moderate, above
0.2 a shift worth a look. The two-sample Kolmogorov-Smirnov statistic (scipy) is reported beside it for
numeric columns: the largest gap between the two distribution functions, NULLs left out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

NUMERIC_BINS = 10
SHARE_FLOOR = 1e-4


@dataclass(frozen=True)
class ColumnDrift:
    """How one column moved from the reference window to the current one."""

    column: str
    kind: str  # "numeric" | "categorical"
    psi: float
    ks_statistic: float | None
    null_share_reference: float
    null_share_current: float
    mean_reference: float | None
    mean_current: float | None
    reference_rows: int
    current_rows: int

    def as_dict(self) -> dict:
        return asdict(self)


def population_stability_index(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    """PSI of two share vectors over the same bins (each summing to 1); shares floored at `SHARE_FLOOR`."""
    r = np.maximum(np.asarray(reference_shares, dtype="float64"), SHARE_FLOOR)
    c = np.maximum(np.asarray(current_shares, dtype="float64"), SHARE_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros_like(counts, dtype="float64")


def numeric_shares(
    reference: pd.Series, current: pd.Series, bins: int = NUMERIC_BINS
) -> tuple[np.ndarray, np.ndarray]:
    """Shares of each window in the reference deciles (open-ended at both ends), then in NULL."""
    ref = pd.to_numeric(reference, errors="coerce").to_numpy(dtype="float64")
    cur = pd.to_numeric(current, errors="coerce").to_numpy(dtype="float64")
    known = ref[~np.isnan(ref)]
    inner = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1])) if known.size else np.array([])

    def counts(values: np.ndarray) -> np.ndarray:
        present = values[~np.isnan(values)]
        per_bin = np.bincount(np.searchsorted(inner, present, side="right"), minlength=inner.size + 1)
        return np.append(per_bin, np.isnan(values).sum())

    return _shares(counts(ref)), _shares(counts(cur))


def categorical_shares(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Shares of each window per category seen in either window, then in NULL."""
    categories = sorted(set(reference.dropna().astype(str)) | set(current.dropna().astype(str)))

    def counts(values: pd.Series) -> np.ndarray:
        seen = values.dropna().astype(str).value_counts()
        return np.array([seen.get(c, 0) for c in categories] + [values.isna().sum()], dtype="float64")

    return _shares(counts(reference)), _shares(counts(current))


def column_drift(column: str, reference: pd.Series, current: pd.Series, categorical: bool) -> ColumnDrift:
    """PSI, NULL shares, means and (numeric columns) the KS statistic of `column` between two windows."""
    from scipy.stats import ks_2samp

    if reference.empty or current.empty:
        raise ValueError(
            f"drift of {column!r} needs rows in both windows: "
            f"{len(reference)} reference, {len(current)} current"
        )
    if categorical:
        ref_shares, cur_shares = categorical_shares(reference, current)
        ks, means = None, (None, None)
    else:
        ref_shares, cur_shares = numeric_shares(reference, current)
        ref_values = pd.to_numeric(reference, errors="coerce").dropna()
        cur_values = pd.to_numeric(current, errors="coerce").dropna()
        both = not ref_values.empty and not cur_values.empty
        ks = float(ks_2samp(ref_values, cur_values).statistic) if both else None
        means = tuple(float(v.mean()) if not v.empty else None for v in (ref_values, cur_values))
    return ColumnDrift(
        column=column,
        kind="categorical" if categorical else "numeric",
        psi=population_stability_index(ref_shares, cur_shares),
        ks_statistic=ks,
        null_share_reference=float(reference.isna().mean()),
        null_share_current=float(current.isna().mean()),
        mean_reference=means[0],
        mean_current=means[1],
        reference_rows=len(reference),
        current_rows=len(current),
    )
