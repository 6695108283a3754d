"""Lineage of a model version: the source data, Iceberg snapshots, dbt run and features it came from."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from components.core.results import Ingestion, Transformation
from components.core.settings import FEATURE_SERVICE, REPO_ROOT, SOURCE_TABLES, Settings

DVC_FILE = REPO_ROOT / "data.dvc"


def source_data_hash(data_dir: Path) -> str:
    """SHA-256 over the source files' names and contents, in table order."""
    digest = hashlib.sha256()
    for table in SOURCE_TABLES:
        path = data_dir / f"{table}.csv"
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest() if path.is_file() else b"missing")
    return digest.hexdigest()


def dvc_data_version(settings: Settings) -> str | None:
    """The md5 that `data.dvc` records for `data/`, when the profile reads the repository's `data/`."""
    if settings.data_dir != REPO_ROOT / "data" or not DVC_FILE.is_file():
        return None
    outs = (yaml.safe_load(DVC_FILE.read_text(encoding="utf-8")) or {}).get("outs") or [{}]
    return outs[0].get("md5")


def lineage_of(ingest: Ingestion, transform: Transformation, features: Mapping[str, Any]) -> dict:
    """Flatten the upstream step results (the features' as its training set's metadata) into the lineage a
    model version is tagged with."""
    return {
        "data_sha256": ingest.data_sha256,
        "data_dvc_md5": ingest.data_dvc_md5,
        "bronze_load_id": ingest.load_id,
        "bronze_snapshot_ids": ingest.snapshots,
        "dbt_invocation_id": transform.dbt_invocation_id,
        "gold_snapshot_ids": transform.published,
        "feature_service": features.get("feature_service", FEATURE_SERVICE),
        "feature_snapshot_id": features.get("gold_snapshot_id"),
    }


#: Run tags that hold JSON (dicts of snapshot ids).
_JSON_TAGS = ("bronze_snapshot_ids", "gold_snapshot_ids")
#: Run params that describe the training set and its as-of window.
_WINDOW_PARAMS = (
    "training_set_rows",
    "train_rows",
    "holdout_rows",
    "train_start",
    "train_end",
    "holdout_start",
    "holdout_end",
)


def model_lineage(settings: Settings, version: int | str | None = None) -> dict[str, Any]:
    """The chain behind a registered model version (default: the champion), from its MLflow run.

    Returns:
        `model` (name, version, aliases, uri), `mlflow_run` (id, name, experiment, start, holdout
        metrics), `training_set` (rows, as-of window, content hash), `feature_service`, `gold` (snapshot
        id per table, the one the features were read from), `dbt_invocation_id`, `bronze` (snapshot id per
        table, dlt load id) and `source_data` (the `data.dvc` md5 and the files' SHA-256). Values the run did
        not record are None.

    Raises:
        NoChampionError: no version given and none carries alias `champion`.
        LookupError: the version does not exist; the message lists the versions that do.
    """
    from components.core.model.registry import CHAMPION, NoChampionError, alias_version, tracking_client

    client = tracking_client(settings)
    name = settings.model_name
    if version is None:
        version = alias_version(client, name, CHAMPION)
        if version is None:
            raise NoChampionError(f"no version of {name!r} carries the alias {CHAMPION!r}: give a version")
    found = client.search_model_versions(f"name='{name}'")
    versions = sorted(int(v.version) for v in found)
    if str(version) not in {str(v) for v in versions}:
        listed = ", ".join(map(str, versions)) or "none"
        raise LookupError(f"model {name!r} has no version {version}; registered versions: {listed}")
    model_version = client.get_model_version(name, str(version))  # with its aliases, which search leaves out
    run = client.get_run(model_version.run_id)
    tags, params = run.data.tags, run.data.params
    recorded = {key: json.loads(tags[key]) if key in tags else None for key in _JSON_TAGS}
    return {
        "model": {
            "name": name,
            "version": int(model_version.version),
            "aliases": sorted(model_version.aliases),
            "uri": f"models:/{name}/{model_version.version}",
        },
        "mlflow_run": {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "experiment": client.get_experiment(run.info.experiment_id).name,
            "started": datetime.fromtimestamp(run.info.start_time / 1000, UTC).isoformat(),
            "metrics": {k: run.data.metrics[k] for k in _HOLDOUT_METRICS if k in run.data.metrics},
        },
        "training_set": {
            **{key: _number(params.get(key)) for key in _WINDOW_PARAMS},
            "sha256": tags.get("training_set_hash"),
        },
        "feature_service": tags.get("feature_service"),
        "gold": {
            "snapshot_ids": recorded["gold_snapshot_ids"],
            "features_snapshot_id": _number(tags.get("feature_snapshot_id")),
        },
        "dbt_invocation_id": tags.get("dbt_invocation_id"),
        "bronze": {
            "snapshot_ids": recorded["bronze_snapshot_ids"],
            "dlt_load_id": tags.get("bronze_load_id"),
        },
        "source_data": {"dvc_md5": tags.get("data_dvc_md5"), "sha256": tags.get("data_sha256")},
    }


_HOLDOUT_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier_score", "ece")


def _number(value: str | None) -> int | str | None:
    """A recorded param or tag as an int when it is one (row counts, snapshot ids), else as recorded."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return value


def format_lineage(lineage: dict[str, Any]) -> str:
    """The chain as text, newest first: model, run, training set, features, gold, dbt, bronze, data."""
    model, run, training = lineage["model"], lineage["mlflow_run"], lineage["training_set"]
    aliases = f" (alias {', '.join(model['aliases'])})" if model["aliases"] else ""
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in run["metrics"].items())

    def snapshots(ids: dict | None) -> str:
        rows = [f"{table:<28} {snapshot}" for table, snapshot in sorted((ids or {}).items())]
        return "\n".join(f"      {row}" for row in rows or ["not recorded"])

    lines = [
        f"model {model['name']} version {model['version']}{aliases}: {model['uri']}",
        f"  <- MLflow run {run['run_id']} ({run['run_name']}, experiment {run['experiment']}, "
        f"started {run['started']}); holdout {metrics}",
        f"  <- training set: {training['training_set_rows']} rows, sha256 {training['sha256']}",
        f"       train {training['train_rows']} rows, as-of {training['train_start']} .. "
        f"{training['train_end']}",
        f"       holdout {training['holdout_rows']} rows, as-of {training['holdout_start']} .. "
        f"{training['holdout_end']}",
        f"  <- feature service {lineage['feature_service']} "
        f"(gold.customer_features snapshot {lineage['gold']['features_snapshot_id']})",
        f"  <- gold and silver snapshots:\n{snapshots(lineage['gold']['snapshot_ids'])}",
        f"  <- dbt invocation {lineage['dbt_invocation_id']}",
        f"  <- bronze snapshots (dlt load {lineage['bronze']['dlt_load_id']}):\n"
        f"{snapshots(lineage['bronze']['snapshot_ids'])}",
        f"  <- source data: data.dvc md5 {lineage['source_data']['dvc_md5']}, "
        f"files sha256 {lineage['source_data']['sha256']}",
    ]
    return "\n".join(lines)
