"""The Feast repository of the platform: entity `customer`, the two feature views over gold and the
feature service `churn_v1`, declared from the feature contract (`components/core/feature_contract.py`)."""
