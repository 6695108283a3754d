"""Ports, folders, versions and credentials of the `stack` services, read from STACK_* variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Development-only object-storage credentials, used when AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are unset.
DEV_ACCESS_KEY = "lakehouse-dev"
DEV_SECRET_KEY = "lakehouse-dev-secret"

BUCKET = "lakehouse"
CATALOG_NAME = "lakehouse"
PG_USER = "lakehouse"
PG_DATABASES = ("iceberg_catalog", "mlflow")
REGION = "us-east-1"

#: Environment variable -> default, for every knob `stack.sh` reads (see stack.env.example).
DEFAULTS: dict[str, str] = {
    "STACK_HOME": str(REPO_ROOT / ".lakehouse" / "stack"),
    "STACK_CACHE": str(REPO_ROOT / ".cache" / "stack"),
    "STACK_PG_PORT": "55432",
    "STACK_REDIS_PORT": "56379",
    "STACK_S3_PORT": "59000",
    "STACK_TRINO_PORT": "8085",
    "STACK_MLFLOW_PORT": "55000",
    "STACK_TRINO_VERSION": "476",
    "STACK_S3PROXY_VERSION": "4.1.0",
    "STACK_TRINO_HEAP": "1G",
    "STACK_JAVA_HOME": "/usr/lib/jvm/temurin-25-jdk-amd64",
    "STACK_START_TIMEOUT": "180",
    "STACK_MAVEN_URL": "https://repo1.maven.org/maven2",
}


class StackConfigError(ValueError):
    """Raised when a STACK_* variable holds a value the stack cannot use."""


@dataclass(frozen=True)
class StackConfig:
    """Everything the stack scripts need to start, check and stop the services."""

    home: Path
    cache: Path
    pg_port: int
    redis_port: int
    s3_port: int
    trino_port: int
    mlflow_port: int
    trino_version: str
    s3proxy_version: str
    trino_heap: str
    java_home: Path
    start_timeout: float
    maven_url: str
    access_key: str
    secret_key: str
    dev_credentials: bool

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def trino_url(self) -> str:
        return f"http://127.0.0.1:{self.trino_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def warehouse(self) -> str:
        return f"s3://{BUCKET}/warehouse"

    def pg_url(self, database: str) -> str:
        """SQLAlchemy URL of one of the stack's PostgreSQL databases."""
        return f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{self.pg_port}/{database}"

    def catalog_properties(self) -> dict[str, str]:
        """Properties for `pyiceberg.catalog.load_catalog("lakehouse", **props)` against the stack."""
        return {
            "type": "sql",
            "uri": self.pg_url("iceberg_catalog"),
            "warehouse": self.warehouse,
            "s3.endpoint": self.s3_endpoint,
            "s3.access-key-id": self.access_key,
            "s3.secret-access-key": self.secret_key,
            "s3.path-style-access": "true",
            "s3.region": REGION,
        }

    def client_env(self) -> dict[str, str]:
        """Variables that point the platform's `stack` profile and S3 clients at these services."""
        return {
            "LAKEHOUSE_PROFILE": "stack",
            "LAKEHOUSE_CATALOG_URI": self.pg_url("iceberg_catalog"),
            "LAKEHOUSE_WAREHOUSE": self.warehouse,
            "LAKEHOUSE_S3_ENDPOINT": self.s3_endpoint,
            "LAKEHOUSE_MLFLOW_TRACKING_URI": self.mlflow_url,
            "LAKEHOUSE_TRINO_HOST": "127.0.0.1",
            "LAKEHOUSE_TRINO_PORT": str(self.trino_port),
            "LAKEHOUSE_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "MLFLOW_S3_ENDPOINT_URL": self.s3_endpoint,
        }

    def ports(self) -> dict[str, int]:
        return {
            "postgres": self.pg_port,
            "redis": self.redis_port,
            "s3": self.s3_port,
            "trino": self.trino_port,
            "mlflow": self.mlflow_port,
        }


def _port(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name) or DEFAULTS[name]
    try:
        port = int(raw)
    except ValueError:
        raise StackConfigError(f"{name} must be a TCP port number, got {raw!r}") from None
    if not 1 <= port <= 65535:
        raise StackConfigError(f"{name} must be between 1 and 65535, got {port}")
    return port


def load_config(env: Mapping[str, str] | None = None) -> StackConfig:
    """Read the stack configuration from `env` (default: the process environment).

    Raises:
        StackConfigError: a port is not a number, two services share a port, or the timeout is invalid.
    """
    env = os.environ if env is None else env

    def get(name: str) -> str:
        return env.get(name) or DEFAULTS[name]

    try:
        timeout = float(get("STACK_START_TIMEOUT"))
    except ValueError:
        raise StackConfigError(
            f"STACK_START_TIMEOUT must be seconds, got {get('STACK_START_TIMEOUT')!r}"
        ) from None
    access_key, secret_key = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    dev_credentials = not (access_key and secret_key)
    config = StackConfig(
        home=Path(get("STACK_HOME")).resolve(),
        cache=Path(get("STACK_CACHE")).resolve(),
        pg_port=_port(env, "STACK_PG_PORT"),
        redis_port=_port(env, "STACK_REDIS_PORT"),
        s3_port=_port(env, "STACK_S3_PORT"),
        trino_port=_port(env, "STACK_TRINO_PORT"),
        mlflow_port=_port(env, "STACK_MLFLOW_PORT"),
        trino_version=get("STACK_TRINO_VERSION"),
        s3proxy_version=get("STACK_S3PROXY_VERSION"),
        trino_heap=get("STACK_TRINO_HEAP"),
        java_home=Path(get("STACK_JAVA_HOME")),
        start_timeout=timeout,
        maven_url=get("STACK_MAVEN_URL").rstrip("/"),
        access_key=DEV_ACCESS_KEY if dev_credentials else str(access_key),
        secret_key=DEV_SECRET_KEY if dev_credentials else str(secret_key),
        dev_credentials=dev_credentials,
    )
    by_port: dict[int, str] = {}
    for service, port in config.ports().items():
        if port in by_port:
            raise StackConfigError(f"{service} and {by_port[port]} are both configured on port {port}")
        by_port[port] = service
    return config
