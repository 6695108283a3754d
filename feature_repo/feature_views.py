"""Feast feature views over the gold customer feature mart: recent activity and customer profile."""

from datetime import timedelta

from feast import FeatureView, Field
from feast.data_source import DataSource
from feast.types import Float64, Int64, String

from feature_repo.data_sources import customer_features_source
from feature_repo.entities import customer

#: gold.customer_features has one row per customer per week. A row stays valid for two weekly as-of
#: dates, so a point-in-time join still finds a row when one weekly run is missing, and never a
#: row older than two weeks.
AS_OF_TTL = timedelta(days=14)


def customer_activity_view(source: DataSource) -> FeatureView:
    """Order recency, frequency and spend of a customer before each as-of date."""
    return FeatureView(
        name="customer_activity",
        entities=[customer],
        ttl=AS_OF_TTL,
        schema=[
            Field(name="customer_id", dtype=Int64),
            Field(name="recency_days", dtype=Float64, description="Days since the last non-cancelled order."),
            Field(name="orders_7d", dtype=Int64, description="Non-cancelled orders in the last 7 days."),
            Field(name="orders_30d", dtype=Int64, description="Non-cancelled orders in the last 30 days."),
            Field(name="orders_90d", dtype=Int64, description="Non-cancelled orders in the last 90 days."),
            Field(name="spend_7d_amount", dtype=Float64, description="Net spend in the last 7 days."),
            Field(name="spend_30d_amount", dtype=Float64, description="Net spend in the last 30 days."),
            Field(name="spend_90d_amount", dtype=Float64, description="Net spend in the last 90 days."),
            Field(name="avg_order_amount", dtype=Float64, description="Lifetime average order amount."),
        ],
        source=source,
        online=True,
        description="Order recency, frequency and spend of a customer as of each weekly as-of date.",
        tags={"layer": "gold", "group": "activity", "cadence": "weekly"},
        owner="lakehouse",
    )


def customer_profile_view(source: DataSource) -> FeatureView:
    """Tenure, category breadth and loyalty tier of a customer at each as-of date."""
    return FeatureView(
        name="customer_profile",
        entities=[customer],
        ttl=AS_OF_TTL,
        schema=[
            Field(name="customer_id", dtype=Int64),
            Field(name="tenure_days", dtype=Int64, description="Days since signup."),
            Field(name="distinct_categories_90d", dtype=Int64, description="Categories bought in 90 days."),
            Field(
                name="top_category_share_90d",
                dtype=Float64,
                description="Share of 90-day spend in the top category (0..1).",
            ),
            Field(name="loyalty_tier_rank", dtype=Int64, description="Loyalty tier as 1 (bronze) to 4."),
            Field(name="loyalty_tier", dtype=String, description="Loyalty tier valid at the as-of date."),
        ],
        source=source,
        online=True,
        description="Tenure, category breadth and loyalty tier of a customer at each weekly as-of date.",
        tags={"layer": "gold", "group": "profile", "cadence": "weekly"},
        owner="lakehouse",
    )


customer_activity = customer_activity_view(customer_features_source)
customer_profile = customer_profile_view(customer_features_source)
