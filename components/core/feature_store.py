"""The features' gold tables and the Feast store: where the 13 features of `churn_v1` (`feature_contract.py`)
are read from, their latest rows, the training set's columns, and the store of `feature_repo/` for a
profile's online store. Shared by the features, scoring and monitoring stages, the reset command and the
model server."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from components.core.catalog import get_catalog
from components.core.feature_contract import FEATURE_COLUMNS
from components.core.settings import GOLD, Settings, get_settings

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

CUSTOMER_FEATURES = f"{GOLD}.customer_features"
CHURN_LABELS = f"{GOLD}.churn_labels"
TRAINING_SET_COLUMNS = ("customer_id", "as_of_ts", "is_churned", *FEATURE_COLUMNS)

_VAR = re.compile(r"\$\{(\w+)\}")


class FeaturesError(RuntimeError):
    """Raised when the gold tables or the Feast registry the features step needs are missing."""


def get_store(settings: Settings | None = None) -> FeatureStore:
    """The Feast store of `feature_repo/` for the profile's online store, its `${VAR}`s from `settings.env()`.

    The configuration file is `settings.feature_store_yaml` (SQLite or Redis online store). Variables the
    settings do not carry fall back to the process environment; an unset one is an error rather than a
    literal `${VAR}` path.
    """
    import yaml
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    settings = settings or get_settings()
    settings.ensure_dirs()
    yaml_path = settings.feature_store_yaml
    values = {**os.environ, **settings.env()}
    missing = sorted({name for name in _VAR.findall(yaml_path.read_text()) if name not in values})
    if missing:
        raise FeaturesError(f"{yaml_path} needs environment variables that are not set: {', '.join(missing)}")
    raw = yaml.safe_load(_VAR.sub(lambda m: values[m.group(1)], yaml_path.read_text()))
    config = RepoConfig(**raw)
    config.repo_path = settings.feature_repo_dir
    return FeatureStore(repo_path=str(settings.feature_repo_dir), config=config)


def gold_table(identifier: str, settings: Settings) -> Any:
    """Load a gold table that must exist and hold a snapshot, or say which step to run."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    try:
        table = get_catalog(settings).load_table(identifier)
    except (NoSuchTableError, NoSuchNamespaceError) as exc:
        raise FeaturesError(
            f"{identifier} is not in the {settings.catalog_name!r} catalog at {settings.catalog_uri}: "
            "run the transform step first"
        ) from exc
    if table.current_snapshot() is None:
        raise FeaturesError(f"{identifier} has no snapshot yet: run the transform step first")
    return table


def customer_features(settings: Settings) -> tuple[pa.Table, int]:
    """The whole of `gold.customer_features` at its current snapshot, and that snapshot's id."""
    table = gold_table(CUSTOMER_FEATURES, settings)
    snapshot_id = table.current_snapshot().snapshot_id
    rows = table.scan(snapshot_id=snapshot_id).to_arrow()
    if rows.num_rows == 0:
        raise ValueError(f"{CUSTOMER_FEATURES} is empty: run the transform step on loaded bronze data first")
    return rows, snapshot_id


def latest_rows(rows: pa.Table) -> pd.DataFrame:
    """The rows of the latest as-of date, by customer id.

    These are the rows the features step materializes into the online store, so the model server scores
    the same values.
    """
    current = rows.filter(pc.equal(rows["as_of_ts"], pc.max(rows["as_of_ts"])))
    return current.to_pandas().sort_values("customer_id", ignore_index=True)
