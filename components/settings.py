"""One settings object that decides every endpoint for the `local`, `stack` and `cluster` profiles."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path

PROFILES = ("local", "stack", "cluster")
REPO_ROOT = Path(__file__).resolve().parent.parent
PROFILES_FILE = Path(__file__).with_name("profiles.toml")

#: Iceberg namespaces of the medallion layers.
BRONZE, SILVER, GOLD = "bronze", "silver", "gold"
#: Source tables, in load order. Each becomes `bronze.<name>`.
SOURCE_TABLES = ("customers", "products", "stores", "orders", "order_items")
FEATURE_SERVICE = "churn_v1"
#: The image every KFP component and the model server run in: this repository installed from its lock
#: file (see infrastructure/README.md). Override it for a private registry.
IMAGE = os.environ.get("LAKEHOUSE_IMAGE", "lakehouse-mlops:0.1.0")
SERVED_MODEL_NAME = "churn"


class SettingsError(ValueError):
    """Raised when the profile or one of its values is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    """Every endpoint and path a step needs; build it with :func:`get_settings`."""

    profile: str
    home: Path
    data_dir: Path
    catalog_name: str
    catalog_type: str
    catalog_uri: str
    warehouse: str
    dbt_target: str
    dbt_duckdb_path: str
    feast_registry: str
    feast_online_path: str
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    model_name: str
    serving_host: str
    serving_port: int

    @property
    def dbt_project_dir(self) -> Path:
        return REPO_ROOT / "dbt"

    @property
    def feature_repo_dir(self) -> Path:
        return REPO_ROOT / "feature_repo"

    def catalog_properties(self) -> dict[str, str]:
        """Properties for `pyiceberg.catalog.load_catalog(settings.catalog_name, **props)`."""
        props = {"type": self.catalog_type, "uri": self.catalog_uri, "warehouse": self.warehouse}
        for key, env in (
            ("s3.endpoint", "LAKEHOUSE_S3_ENDPOINT"),
            ("s3.access-key-id", "AWS_ACCESS_KEY_ID"),
            ("s3.secret-access-key", "AWS_SECRET_ACCESS_KEY"),
        ):
            if os.environ.get(env):
                props[key] = os.environ[env]
        return props

    def env(self) -> dict[str, str]:
        """Environment variables that carry these settings into a subprocess (dbt, Feast, KFP tasks)."""
        values = {
            "LAKEHOUSE_PROFILE": self.profile,
            "LAKEHOUSE_HOME": str(self.home),
            "LAKEHOUSE_DATA_DIR": str(self.data_dir),
        }
        for f in fields(self):
            if f.name not in ("profile", "home", "data_dir"):
                values[f"LAKEHOUSE_{f.name.upper()}"] = str(getattr(self, f.name))
        return values

    def ensure_dirs(self) -> None:
        """Create the local state folders this profile writes to."""
        self.home.mkdir(parents=True, exist_ok=True)
        for value in (self.warehouse, self.feast_registry, self.feast_online_path, self.mlflow_artifact_root):
            if value.startswith("file://"):
                Path(value.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
            elif "://" not in value:
                path = Path(value)
                (path if not path.suffix else path.parent).mkdir(parents=True, exist_ok=True)


@cache
def _profiles() -> dict[str, dict[str, str]]:
    with PROFILES_FILE.open("rb") as fh:
        return tomllib.load(fh)


def get_settings(profile: str | None = None) -> Settings:
    """Build the settings for `profile` (default: $LAKEHOUSE_PROFILE, else `local`).

    Values come from `components/profiles.toml`; an environment variable LAKEHOUSE_<KEY> overrides a key.
    """
    profile = profile or os.environ.get("LAKEHOUSE_PROFILE", "local")
    if profile not in PROFILES:
        raise SettingsError(f"unknown profile {profile!r}: expected one of {', '.join(PROFILES)}")
    home = Path(os.environ.get("LAKEHOUSE_HOME", REPO_ROOT / ".lakehouse")).resolve()
    data_dir = Path(os.environ.get("LAKEHOUSE_DATA_DIR", REPO_ROOT / "data")).resolve()
    raw = dict(_profiles()[profile])
    values: dict[str, object] = {}
    for f in fields(Settings):
        if f.name in ("profile", "home", "data_dir"):
            continue
        value = os.environ.get(f"LAKEHOUSE_{f.name.upper()}", raw.get(f.name))
        if value is None:
            raise SettingsError(f"profile {profile!r} has no value for {f.name!r} in {PROFILES_FILE}")
        value = str(value).format(home=home, data=data_dir)
        values[f.name] = value
    try:
        values["serving_port"] = int(values["serving_port"])
    except ValueError as exc:
        raise SettingsError(f"serving_port must be an integer, got {values['serving_port']!r}") from exc
    return Settings(profile=profile, home=home, data_dir=data_dir, **values)


@contextmanager
def scoped_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block, then restore the previous values."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
