"""Feast feature views over the gold customer feature mart: recent activity and customer profile."""

from datetime import timedelta

from feast import FeatureView, Field
from feast.data_source import DataSource
from feast.types import Float64, Int64, String

from components.core.feature_contract import ACTIVITY, PROFILE, view_features
from feature_repo.data_sources import customer_features_source
from feature_repo.entities import customer

#: gold.customer_features has one row per customer per week. A row stays valid for two weekly as-of
#: dates, so a point-in-time join still finds a row when one weekly run is missing, and never a
#: row older than two weeks.
AS_OF_TTL = timedelta(days=14)


#: The Feast type of each contract type.
FEAST_TYPES = {"int64": Int64, "float64": Float64, "string": String}


def contract_fields(view: str) -> list[Field]:
    """The view's schema: the entity key, then its features from the feature contract."""
    fields = [Field(name="customer_id", dtype=Int64)]
    for feature in view_features(view):
        fields.append(
            Field(name=feature.name, dtype=FEAST_TYPES[feature.dtype], description=feature.description)
        )
    return fields


def customer_activity_view(source: DataSource) -> FeatureView:
    """Order recency, frequency and spend of a customer before each as-of date."""
    return FeatureView(
        name=ACTIVITY,
        entities=[customer],
        ttl=AS_OF_TTL,
        schema=contract_fields(ACTIVITY),
        source=source,
        online=True,
        description="Order recency, frequency and spend of a customer as of each weekly as-of date.",
        tags={"layer": "gold", "group": "activity", "cadence": "weekly"},
        owner="lakehouse",
    )


def customer_profile_view(source: DataSource) -> FeatureView:
    """Tenure, category breadth and loyalty tier of a customer at each as-of date."""
    return FeatureView(
        name=PROFILE,
        entities=[customer],
        ttl=AS_OF_TTL,
        schema=contract_fields(PROFILE),
        source=source,
        online=True,
        description="Tenure, category breadth and loyalty tier of a customer at each weekly as-of date.",
        tags={"layer": "gold", "group": "profile", "cadence": "weekly"},
        owner="lakehouse",
    )


customer_activity = customer_activity_view(customer_features_source)
customer_profile = customer_profile_view(customer_features_source)
