"""Everything `feast apply` registers, imported by package name so each object exists exactly once."""

from __future__ import annotations

from typing import Any

from components.core.settings import Settings
from feature_repo.data_sources import customer_features_source, customer_features_source_from
from feature_repo.entities import customer
from feature_repo.feature_services import churn_v1, churn_v1_service
from feature_repo.feature_views import (
    customer_activity,
    customer_activity_view,
    customer_profile,
    customer_profile_view,
)

#: The objects of the environment this process was started in (what the `feast` command line applies).
REPO_OBJECTS = [customer, customer_features_source, customer_activity, customer_profile, churn_v1]


def repo_objects(settings: Settings) -> list[Any]:
    """The same objects, bound to the catalog of `settings` rather than the process environment."""
    source = customer_features_source_from(settings)
    activity, profile = customer_activity_view(source), customer_profile_view(source)
    return [customer, source, activity, profile, churn_v1_service(activity, profile)]
