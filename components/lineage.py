"""Lineage of a run: which source data, Iceberg snapshots, dbt invocation and feature service it used."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from components.settings import FEATURE_SERVICE, REPO_ROOT, SOURCE_TABLES, Settings

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


def lineage_of(ingest: dict, transform: dict, features: dict) -> dict:
    """Flatten the upstream step results into the lineage a model version is tagged with."""
    return {
        "data_sha256": ingest.get("data_sha256"),
        "data_dvc_md5": ingest.get("data_dvc_md5"),
        "bronze_load_id": ingest.get("load_id"),
        "bronze_snapshot_ids": ingest.get("snapshots", {}),
        "dbt_invocation_id": transform.get("dbt_invocation_id"),
        "gold_snapshot_ids": transform.get("published", {}),
        "feature_service": features.get("feature_service", FEATURE_SERVICE),
        "feature_snapshot_id": features.get("snapshot_id"),
    }
