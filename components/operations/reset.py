"""Starting over on purpose: drop the lakehouse's tables and the state built from them."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from components.core.catalog import get_catalog
from components.core.settings import Settings
from components.operations.maintenance import LAKEHOUSE_NAMESPACES, lakehouse_tables

log = logging.getLogger(__name__)


def reset_lakehouse(settings: Settings, models: bool = False) -> list[str]:
    """Give the profile a fresh lakehouse; returns what was removed, one line each.

    Drops every bronze/silver/gold table with its files (and the engine's views), the online features,
    the Feast registry, dbt's DuckDB file and artifacts, dlt's working folder and the local run outputs.
    The registered model (versions, `champion` alias) is deleted too when `models` is set; the MLflow
    experiment's runs always stay.
    """
    done: list[str] = []
    done += _teardown_online_store(settings)
    catalog = get_catalog(settings)
    for identifier in lakehouse_tables(settings):
        catalog.purge_table(identifier)
        done.append(f"table {identifier} dropped with its files")
    for namespace in LAKEHOUSE_NAMESPACES:
        done += _drop_namespace(catalog, namespace)
    warehouse = settings.warehouse.removeprefix("file://")
    if settings.warehouse.startswith("file://"):
        for namespace in LAKEHOUSE_NAMESPACES:
            done += _remove(Path(warehouse) / namespace, "files left in the warehouse")
    for path, what in (
        (Path(settings.dbt_duckdb_path), "dbt's DuckDB file"),
        (Path(f"{settings.dbt_duckdb_path}.wal"), "dbt's DuckDB log"),
        (settings.home / "dbt", "dbt's artifacts and logs"),
        (settings.home / "dlt", "dlt's working folder"),
        (settings.home / "kfp", "local run outputs"),
        (settings.home / "deploy", "rendered manifests"),
    ):
        done += _remove(path, what)
    for value, what in ((settings.feast_registry, "the Feast registry"), (settings.feast_online_path, "")):
        if "://" not in value and what:
            done += _remove(Path(value), what)
    if models:
        done += _drop_models(settings)
    return done


def _teardown_online_store(settings: Settings) -> list[str]:
    """Remove the online features (SQLite tables or Redis keys) while the registry still names them."""
    from components.core.feature_store import get_store

    if "://" not in settings.feast_registry and not Path(settings.feast_registry).exists():
        return []
    try:
        get_store(settings).teardown()
    except Exception as exc:  # noqa: BLE001 - a broken registry must not stop the reset; say so
        return [f"online store not torn down ({type(exc).__name__}: {exc}); remove it by hand if it exists"]
    return [f"online features removed ({settings.feast_online_store})"]


def _drop_namespace(catalog, namespace: str) -> list[str]:
    from pyiceberg.exceptions import NamespaceNotEmptyError, NoSuchNamespaceError

    try:
        for view in _views(catalog, namespace):
            catalog.drop_view(view)
        catalog.drop_namespace(namespace)
    except NoSuchNamespaceError:
        return []
    except NamespaceNotEmptyError:
        return [f"namespace {namespace} kept: it holds objects this catalog client cannot drop"]
    return [f"namespace {namespace} dropped"]


def _views(catalog, namespace: str) -> list[tuple[str, ...]]:
    try:
        return list(catalog.list_views(namespace))
    except NotImplementedError:  # the SQL catalog keeps no views
        return []


def _remove(path: Path, what: str) -> list[str]:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    else:
        return []
    return [f"{what} removed ({path})"]


def _drop_models(settings: Settings) -> list[str]:
    """Delete the registered model with its versions and aliases; the experiment's runs stay as history."""
    from mlflow.exceptions import MlflowException

    from components.core.model.registry import tracking_client

    try:
        tracking_client(settings).delete_registered_model(settings.model_name)
    except MlflowException:
        return []
    return [f"registered model {settings.model_name} deleted with its versions and aliases"]
