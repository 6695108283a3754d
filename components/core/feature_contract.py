"""The feature contract: the 13 features of `churn_v1`, in training-set order, with their types, the Feast
view each belongs to, whether it is categorical, and what it means.

Everything else derives from it: Feast's views (`feature_repo/feature_views.py`), the training set's columns
(`feature_store.py`), the model's numeric and categorical inputs (`model/pipeline.py`) and the model
server's parsing of request features (`serving/model.py`). The dbt model that computes them
(`dbt/models/gold/customer_features.yml`) is held to it by a test. Plain data: Feast's repository imports it
at apply time without importing any step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Feast's two views over `gold.customer_features`.
ACTIVITY, PROFILE = "customer_activity", "customer_profile"


@dataclass(frozen=True)
class Feature:
    """One model input: a column of `gold.customer_features` served by one Feast view."""

    name: str
    dtype: Literal["int64", "float64", "string"]
    view: str
    description: str
    categorical: bool = False
    #: True for a feature that drifts by construction (it grows with time, as the days since signup do): the
    #: monitor records its figures but never counts it as drifted, so it neither alerts nor retrains forever.
    drifts_by_construction: bool = False


FEATURES: tuple[Feature, ...] = (
    Feature("recency_days", "float64", ACTIVITY, "Days since the last non-cancelled order."),
    Feature("orders_7d", "int64", ACTIVITY, "Non-cancelled orders in the last 7 days."),
    Feature("orders_30d", "int64", ACTIVITY, "Non-cancelled orders in the last 30 days."),
    Feature("orders_90d", "int64", ACTIVITY, "Non-cancelled orders in the last 90 days."),
    Feature("spend_7d_amount", "float64", ACTIVITY, "Net spend in the last 7 days."),
    Feature("spend_30d_amount", "float64", ACTIVITY, "Net spend in the last 30 days."),
    Feature("spend_90d_amount", "float64", ACTIVITY, "Net spend in the last 90 days."),
    Feature("avg_order_amount", "float64", ACTIVITY, "Lifetime average order amount."),
    Feature("tenure_days", "int64", PROFILE, "Days since signup.", drifts_by_construction=True),
    Feature("distinct_categories_90d", "int64", PROFILE, "Categories bought in 90 days."),
    Feature(
        "top_category_share_90d", "float64", PROFILE, "Share of 90-day spend in the top category (0..1)."
    ),
    Feature("loyalty_tier_rank", "int64", PROFILE, "Loyalty tier as 1 (bronze) to 4."),
    Feature("loyalty_tier", "string", PROFILE, "Loyalty tier valid at the as-of date.", categorical=True),
)
#: The feature names in training-set order.
FEATURE_COLUMNS: tuple[str, ...] = tuple(feature.name for feature in FEATURES)
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.categorical)
NUMERIC_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if not f.categorical)
STRING_FEATURES: frozenset[str] = frozenset(f.name for f in FEATURES if f.dtype == "string")
EXPECTED_DRIFT: frozenset[str] = frozenset(f.name for f in FEATURES if f.drifts_by_construction)


def view_features(view: str) -> tuple[Feature, ...]:
    """The features one Feast view serves, in contract order."""
    return tuple(feature for feature in FEATURES if feature.view == view)
