"""Training-set checks and the time-based split: train on early as-of dates, hold out the last weeks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd

from components.core.model.pipeline import FEATURES, KEYS, LABEL, model_input

HOLDOUT_WEEKS = 8
#: Labels look this many days past their as-of date (`gold.churn_labels`).
LABEL_HORIZON_DAYS = 30
MIN_TRAIN_AS_OF_DATES = 4
MIN_TRAIN_ROWS = 200
MIN_HOLDOUT_ROWS = 50
REQUIRED_COLUMNS: list[str] = [*KEYS, LABEL, *FEATURES]


class TrainingDataError(ValueError):
    """Raised when a training set cannot train or evaluate the churn model; the message says why."""


@dataclass(frozen=True)
class HoldoutWindow:
    """As-of boundaries (UTC, inclusive): train on `as_of_ts <= train_cutoff`, hold out `[start, end]`."""

    train_cutoff: pd.Timestamp
    holdout_start: pd.Timestamp
    holdout_end: pd.Timestamp

    def to_params(self) -> dict[str, str]:
        """The boundaries as ISO-8601 strings, for MLflow run params."""
        return {
            "train_cutoff": self.train_cutoff.isoformat(),
            "holdout_start": self.holdout_start.isoformat(),
            "holdout_end": self.holdout_end.isoformat(),
        }

    @classmethod
    def from_params(cls, params: dict[str, str]) -> HoldoutWindow:
        """Read the boundaries back from run params written by :meth:`to_params`."""
        missing = [k for k in ("train_cutoff", "holdout_start", "holdout_end") if k not in params]
        if missing:
            raise TrainingDataError(f"run params lack the holdout window: missing {', '.join(missing)}")
        return cls(*(pd.Timestamp(params[k]) for k in ("train_cutoff", "holdout_start", "holdout_end")))


def validate_training_frame(training_df: pd.DataFrame) -> pd.DataFrame:
    """Check a training set against the contract and return a clean copy.

    The copy has `as_of_ts` in UTC (naive timestamps are read as UTC), `is_churned` as int 0/1, and is
    sorted by (as_of_ts, customer_id) so that the row order of the input never changes the model.

    Raises:
        TrainingDataError: missing columns (named), an empty frame, non-datetime `as_of_ts`, null or
            non-boolean labels, or duplicate (customer_id, as_of_ts) rows.
    """
    if not isinstance(training_df, pd.DataFrame):
        raise TrainingDataError(f"training set must be a pandas DataFrame, got {type(training_df).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in training_df.columns]
    if missing:
        raise TrainingDataError(f"training set is missing column(s): {', '.join(missing)}")
    if training_df.empty:
        raise TrainingDataError("training set has no rows")
    frame = training_df[REQUIRED_COLUMNS].copy()
    if not pd.api.types.is_datetime64_any_dtype(frame["as_of_ts"]):
        raise TrainingDataError(f"as_of_ts must be a datetime column, got dtype {frame['as_of_ts'].dtype}")
    as_of = frame["as_of_ts"]
    frame["as_of_ts"] = as_of.dt.tz_localize("UTC") if as_of.dt.tz is None else as_of.dt.tz_convert("UTC")
    if frame["as_of_ts"].isna().any():
        raise TrainingDataError(f"as_of_ts has {int(frame['as_of_ts'].isna().sum())} null value(s)")
    labels = frame[LABEL]
    if labels.isna().any():
        raise TrainingDataError(f"{LABEL} has {int(labels.isna().sum())} null value(s)")
    values = pd.unique(labels)
    if not set(values) <= {0, 1}:
        shown = ", ".join(sorted(map(repr, values))[:5])
        raise TrainingDataError(f"{LABEL} must be boolean (or 0/1), got values {shown}")
    frame[LABEL] = labels.astype(int)
    duplicated = frame.duplicated(KEYS)
    if duplicated.any():
        raise TrainingDataError(
            f"training set has {int(duplicated.sum())} duplicate (customer_id, as_of_ts) row(s)"
        )
    return frame.sort_values(["as_of_ts", "customer_id"], kind="stable").reset_index(drop=True)


def training_set_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of a validated training set's rows (its row order is canonical): same rows, same hash.

    The rows are hashed in one form whatever the dtypes they arrived in (nullable or NumPy integers,
    nanosecond or microsecond timestamps): keys, 0/1 label and the model input (`model_input`).
    """
    canonical = pd.concat(
        [
            frame["customer_id"].astype("int64"),
            frame["as_of_ts"].astype("datetime64[ns, UTC]"),
            frame[LABEL].astype("int64"),
            model_input(frame),
        ],
        axis=1,
    )
    digest = hashlib.sha256(pd.util.hash_pandas_object(canonical, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def holdout_window(
    frame: pd.DataFrame, holdout_weeks: int = HOLDOUT_WEEKS, label_horizon_days: int = LABEL_HORIZON_DAYS
) -> HoldoutWindow:
    """The window of the last `holdout_weeks` of labelled as-of dates and the training cutoff before it.

    The cutoff is `label_horizon_days` before the holdout start, so no training label looks into it.
    """
    if holdout_weeks < 1:
        raise TrainingDataError(f"holdout_weeks must be at least 1, got {holdout_weeks}")
    as_of_dates = pd.Series(frame["as_of_ts"].unique()).sort_values()
    end = as_of_dates.iloc[-1]
    start = as_of_dates[as_of_dates > end - pd.Timedelta(weeks=holdout_weeks)].iloc[0]
    return HoldoutWindow(start - pd.Timedelta(days=label_horizon_days), start, end)


def rows_in(frame: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp) -> pd.DataFrame:
    """Rows with `start <= as_of_ts <= end` (no lower bound when `start` is None)."""
    keep = frame["as_of_ts"] <= end
    if start is not None:
        keep &= frame["as_of_ts"] >= start
    return frame[keep]


def check_scorable(rows: pd.DataFrame, what: str, min_rows: int) -> None:
    """Raise TrainingDataError unless `rows` has `min_rows` rows and both label classes."""
    if len(rows) < min_rows:
        raise TrainingDataError(f"{what} has {len(rows)} row(s); at least {min_rows} are needed")
    classes = set(rows[LABEL].unique())
    if classes != {0, 1}:
        only = "churned" if classes == {1} else "retained"
        raise TrainingDataError(f"{what} has only one class ({LABEL} is always {only}); both are needed")


def time_split(
    frame: pd.DataFrame, holdout_weeks: int = HOLDOUT_WEEKS, label_horizon_days: int = LABEL_HORIZON_DAYS
) -> tuple[pd.DataFrame, pd.DataFrame, HoldoutWindow]:
    """Split a validated training set into (train, holdout, window) by as-of date.

    Rows between the cutoff and the holdout start are dropped: their labels overlap the holdout window.

    Raises:
        TrainingDataError: too few as-of dates or rows on either side, or a side with one label class.
    """
    window = holdout_window(frame, holdout_weeks, label_horizon_days)
    train = rows_in(frame, None, window.train_cutoff)
    holdout = rows_in(frame, window.holdout_start, window.holdout_end)
    train_dates = train["as_of_ts"].nunique()
    if train_dates < MIN_TRAIN_AS_OF_DATES:
        raise TrainingDataError(
            f"only {train_dates} as-of date(s) on or before the training cutoff "
            f"{window.train_cutoff:%Y-%m-%d} "
            f"(holdout starts {window.holdout_start:%Y-%m-%d}, labels look {label_horizon_days} days ahead); "
            f"at least {MIN_TRAIN_AS_OF_DATES} are needed: "
            f"supply more weekly as-of dates or a shorter holdout than {holdout_weeks} weeks"
        )
    check_scorable(train, "training window", MIN_TRAIN_ROWS)
    check_scorable(holdout, "holdout window", MIN_HOLDOUT_ROWS)
    return train, holdout, window
