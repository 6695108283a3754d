"""Feast feature services: the versioned feature contracts a model is trained and served with."""

from feast import FeatureService, FeatureView

from components.core.settings import FEATURE_SERVICE
from feature_repo.feature_views import customer_activity, customer_profile


def churn_v1_service(activity: FeatureView, profile: FeatureView) -> FeatureService:
    """The 13 features of the churn propensity model, version 1."""
    return FeatureService(
        name=FEATURE_SERVICE,
        features=[activity, profile],
        description="Features of the churn propensity model: customer activity and customer profile.",
        tags={"model": "churn_propensity", "version": "1"},
        owner="lakehouse",
    )


churn_v1 = churn_v1_service(customer_activity, customer_profile)
