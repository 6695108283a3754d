"""Ports, folders, versions and credentials of the `stack` services, read from STACK_* variables."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from components.core.settings import REPO_ROOT, read_env_file, rest_catalog_properties

BUCKET = "lakehouse"
CATALOG_NAME = "lakehouse"
PG_USER = "lakehouse"
PG_DATABASES = ("iceberg_catalog", "mlflow")
REGION = "us-east-1"
#: The OAuth2 client of the REST catalog, and the scope clients ask for (Apache Polaris' scope).
CATALOG_CLIENT_ID = "lakehouse"
CATALOG_SCOPE = "PRINCIPAL_ROLE:ALL"
#: Written by `up` under STACK_HOME: client endpoints and the stack's development-only keys.
ENV_FILE_NAME = "stack.env"
#: Credential variables, each kept in the env file once generated.
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "LAKEHOUSE_CATALOG_CLIENT_ID",
    "LAKEHOUSE_CATALOG_CLIENT_SECRET",
)

#: Environment variable -> default, for every knob `stack.sh` reads (see stack.env.example).
DEFAULTS: dict[str, str] = {
    "STACK_HOME": str(REPO_ROOT / ".lakehouse" / "stack"),
    "STACK_CACHE": str(REPO_ROOT / ".cache" / "stack"),
    "STACK_PG_PORT": "55432",
    "STACK_REDIS_PORT": "56379",
    "STACK_S3_PORT": "59000",
    "STACK_REST_PORT": "58181",
    "STACK_TRINO_PORT": "8085",
    "STACK_MLFLOW_PORT": "55000",
    "STACK_TRINO_VERSION": "476",
    # what the Go module proxy serves as github.com/minio/minio@latest (release tags are refused)
    "STACK_MINIO_VERSION": "v0.0.0-20260212201848-7aac2a2c5b7c",
    "STACK_TRINO_HEAP": "1G",
    "STACK_JAVA_HOME": "/usr/lib/jvm/temurin-25-jdk-amd64",
    "STACK_START_TIMEOUT": "180",
    # lifetime of the REST catalog's OAuth2 tokens (clients fetch a new one when it runs out)
    "STACK_CATALOG_TOKEN_TTL": "3600",
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
    rest_port: int
    trino_port: int
    mlflow_port: int
    trino_version: str
    minio_version: str
    trino_heap: str
    java_home: Path
    start_timeout: float
    catalog_token_ttl: int
    maven_url: str
    access_key: str
    secret_key: str
    catalog_client_id: str
    catalog_client_secret: str
    #: True when the keys were generated for this machine (or read back from the env file), not given.
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
    def catalog_url(self) -> str:
        """The Iceberg REST catalog's base URI (`/v1/config`, `/v1/oauth/tokens`, ... below it)."""
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def env_file(self) -> Path:
        return self.home / ENV_FILE_NAME

    @property
    def trino_url(self) -> str:
        return f"http://127.0.0.1:{self.trino_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def warehouse(self) -> str:
        """Where the catalog server puts new tables."""
        return f"s3://{BUCKET}/warehouse"

    def pg_url(self, database: str) -> str:
        """SQLAlchemy URL of one of the stack's PostgreSQL databases."""
        return f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{self.pg_port}/{database}"

    def catalog_properties(self) -> dict[str, str]:
        """Properties for `pyiceberg.catalog.load_catalog("lakehouse", **props)` against the stack."""
        rest = rest_catalog_properties(
            self.catalog_url, CATALOG_SCOPE, self.catalog_client_id, self.catalog_client_secret
        )
        return {
            "type": "rest",
            "uri": self.catalog_url,
            "warehouse": CATALOG_NAME,
            **rest,
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
            "LAKEHOUSE_CATALOG_TYPE": "rest",
            "LAKEHOUSE_CATALOG_URI": self.catalog_url,
            "LAKEHOUSE_WAREHOUSE": CATALOG_NAME,
            "LAKEHOUSE_CATALOG_SCOPE": CATALOG_SCOPE,
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
            "LAKEHOUSE_CATALOG_CLIENT_ID": self.catalog_client_id,
            "LAKEHOUSE_CATALOG_CLIENT_SECRET": self.catalog_client_secret,
        }

    def ports(self) -> dict[str, int]:
        return {
            "postgres": self.pg_port,
            "redis": self.redis_port,
            "s3": self.s3_port,
            "catalog": self.rest_port,
            "trino": self.trino_port,
            "mlflow": self.mlflow_port,
        }


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read or write (it may hold credentials), whatever mode an
    earlier copy of the file had."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode applies to a new file only
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _port(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name) or DEFAULTS[name]
    try:
        port = int(raw)
    except ValueError:
        raise StackConfigError(f"{name} must be a TCP port number, got {raw!r}") from None
    if not 1 <= port <= 65535:
        raise StackConfigError(f"{name} must be between 1 and 65535, got {port}")
    return port


def generate_credentials(client_id: str = CATALOG_CLIENT_ID) -> dict[str, str]:
    """New random development-only credentials: the S3 key pair and the REST catalog's OAuth2 client."""
    return {
        "AWS_ACCESS_KEY_ID": f"lakehouse-{secrets.token_hex(6)}",
        "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
        "LAKEHOUSE_CATALOG_CLIENT_ID": client_id,
        "LAKEHOUSE_CATALOG_CLIENT_SECRET": secrets.token_urlsafe(30),
    }


def _credentials(env: Mapping[str, str], env_file: Path) -> tuple[dict[str, str], bool]:
    """The S3 key pair and the catalog client: from `env` when both of a pair are set, else from the env
    file an earlier `up` wrote, else newly generated for this machine (`up` then stores them there).

    Returns:
        The four CREDENTIAL_VARIABLES, and whether any of them is not from `env` (development-only keys).
    """
    stored = read_env_file(env_file)
    generated = generate_credentials()
    keys, not_given = {}, False
    for pair in (CREDENTIAL_VARIABLES[:2], CREDENTIAL_VARIABLES[2:]):
        source = next(values for values in (env, stored, generated) if all(values.get(name) for name in pair))
        keys.update({name: str(source[name]) for name in pair})
        not_given = not_given or source is not env
    return keys, not_given


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
    ttl = get("STACK_CATALOG_TOKEN_TTL")
    if not ttl.isdigit() or int(ttl) < 1:
        raise StackConfigError(f"STACK_CATALOG_TOKEN_TTL must be a whole number of seconds, got {ttl!r}")
    home = Path(get("STACK_HOME")).resolve()
    keys, dev_credentials = _credentials(env, home / ENV_FILE_NAME)
    config = StackConfig(
        home=home,
        cache=Path(get("STACK_CACHE")).resolve(),
        pg_port=_port(env, "STACK_PG_PORT"),
        redis_port=_port(env, "STACK_REDIS_PORT"),
        s3_port=_port(env, "STACK_S3_PORT"),
        rest_port=_port(env, "STACK_REST_PORT"),
        trino_port=_port(env, "STACK_TRINO_PORT"),
        mlflow_port=_port(env, "STACK_MLFLOW_PORT"),
        trino_version=get("STACK_TRINO_VERSION"),
        minio_version=get("STACK_MINIO_VERSION"),
        trino_heap=get("STACK_TRINO_HEAP"),
        java_home=Path(get("STACK_JAVA_HOME")),
        start_timeout=timeout,
        catalog_token_ttl=int(ttl),
        maven_url=get("STACK_MAVEN_URL").rstrip("/"),
        access_key=keys["AWS_ACCESS_KEY_ID"],
        secret_key=keys["AWS_SECRET_ACCESS_KEY"],
        catalog_client_id=keys["LAKEHOUSE_CATALOG_CLIENT_ID"],
        catalog_client_secret=keys["LAKEHOUSE_CATALOG_CLIENT_SECRET"],
        dev_credentials=dev_credentials,
    )
    by_port: dict[int, str] = {}
    for service, port in config.ports().items():
        if port in by_port:
            raise StackConfigError(f"{service} and {by_port[port]} are both configured on port {port}")
        by_port[port] = service
    return config
