"""A tiny real churn pipeline, trained on a training set and registered in MLflow with the alias champion."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from components.core.feature_store import FEATURE_COLUMNS
from components.core.settings import Settings

STRING_COLUMNS = ["loyalty_tier"]
NUMERIC_COLUMNS = [name for name in FEATURE_COLUMNS if name not in STRING_COLUMNS]


def churn_pipeline():
    """Impute, scale and one-hot the 13 features, then a logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC_COLUMNS),
            (
                "tier",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                STRING_COLUMNS,
            ),
        ]
    )
    return Pipeline([("features", features), ("classifier", LogisticRegression())])


def register_versions(settings: Settings, training_set: pd.DataFrame, versions: int = 2, champion: int = 1):
    """Train `versions` pipelines, register each as `settings.model_name` and give `champion` the alias.

    Version k is trained on the training set with its label flipped for k > 1, so versions score differently.

    Returns:
        The fitted pipelines by version number.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    uri = settings.mlflow_tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = "churn-serving-tests"
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment, artifact_location=Path(settings.mlflow_artifact_root).as_uri())
    mlflow.set_experiment(experiment)
    # numeric features as float64, as the training step feeds them (an integer column cannot hold NULL)
    features = training_set.loc[:, list(FEATURE_COLUMNS)].astype(dict.fromkeys(NUMERIC_COLUMNS, "float64"))
    fitted = {}
    for version in range(1, versions + 1):
        labels = training_set["is_churned"] if version == 1 else ~training_set["is_churned"]
        pipeline = churn_pipeline().fit(features, labels)
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                pipeline,
                name="model",
                registered_model_name=settings.model_name,
                signature=infer_signature(features, pipeline.predict_proba(features)[:, 1]),
                pip_requirements=["scikit-learn"],
                skops_trusted_types=["numpy.dtype"],
            )
        fitted[version] = pipeline
    mlflow.MlflowClient().set_registered_model_alias(settings.model_name, "champion", str(champion))
    return fitted
