"""A private `stack` (own folder under /tmp, own free loopback ports) started and stopped from Python."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from components.core.ports import free_port, free_ports
from infrastructure.local.builds import find_go
from infrastructure.local.config import DEFAULTS, StackConfig, generate_credentials, load_config
from infrastructure.local.downloads import maven_url
from infrastructure.local.java import find_java
from infrastructure.local.object_store import ObjectStore
from infrastructure.local.postgres import INSTALL_HINT, _server_dirs
from infrastructure.local.rest_catalog import RestCatalog
from infrastructure.local.service import Service, ServiceError, require_binary
from infrastructure.local.stack import EXIT_OK, down, up
from infrastructure.local.trino_server import MIN_JAVA, Trino

PORT_VARIABLES = (
    "STACK_PG_PORT",
    "STACK_REDIS_PORT",
    "STACK_S3_PORT",
    "STACK_REST_PORT",
    "STACK_TRINO_PORT",
    "STACK_MLFLOW_PORT",
)
#: The ports `make stack-up` uses: a private stack never takes one of them.
STACK_DEFAULT_PORTS = frozenset(int(DEFAULTS[name]) for name in PORT_VARIABLES)
#: Credentials of private stacks, new for each test run (never a machine's stored ones, never fixed in
#: code): S3 keys and the REST catalog's OAuth2 client.
TEST_CREDENTIALS = generate_credentials(client_id="lakehouse-test")


class StackUnavailable(RuntimeError):
    """The services cannot run on this machine (a prerequisite is missing); the message says which."""


class StackStartFailed(RuntimeError):
    """A prerequisite was there but a service did not start; the message carries `up`'s output."""


@dataclass(frozen=True)
class StackServices:
    """A running private stack: its configuration and what a client needs to reach it."""

    config: StackConfig
    env: dict[str, str] = field(default_factory=dict)

    @property
    def catalog_properties(self) -> dict[str, str]:
        """Properties for `pyiceberg.catalog.load_catalog("lakehouse", **props)`."""
        return self.config.catalog_properties()

    @property
    def trino_host(self) -> str:
        return "127.0.0.1"

    @property
    def trino_port(self) -> int:
        return self.config.trino_port

    @property
    def mlflow_uri(self) -> str:
        return self.config.mlflow_url

    @property
    def s3_endpoint(self) -> str:
        return self.config.s3_endpoint

    @property
    def access_key(self) -> str:
        return self.config.access_key

    @property
    def secret_key(self) -> str:
        return self.config.secret_key

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.config.redis_port}/0"

    def trino(self, sql: str) -> list[list]:
        """Run one statement on the stack's Trino (catalog `lakehouse`) and return its rows."""
        return Trino(self.config).query(sql)

    @contextlib.contextmanager
    def second_catalog(self, home: Path, token_ttl: int | None = None) -> Iterator[StackConfig]:
        """Another REST catalog server on this stack's PostgreSQL and MinIO, on a port of its own.

        It serves the same tables; a test may stop and restart it (`up`/`down` with the yielded
        configuration) without disturbing the session's catalog. Stopped on the way out.
        """
        changes = {"rest_port": free_port(), "home": home}
        if token_ttl is not None:
            changes["catalog_token_ttl"] = token_ttl
        config = dataclasses.replace(self.config, **changes)
        try:
            start_catalog(config)
            yield config
        finally:
            stop_catalog(config)

    def trino_snapshot(self, identifier: str) -> int:
        """The snapshot Trino reads table `layer.name` at: the one its `main` branch points to."""
        namespace, name = identifier.split(".")
        rows = self.trino(f"SELECT snapshot_id FROM {namespace}.\"{name}$refs\" WHERE name = 'main'")
        assert len(rows) == 1, f"{identifier} has no main branch in Trino: {rows}"
        return rows[0][0]


def private_config(home: Path, base: Mapping[str, str] | None = None) -> StackConfig:
    """The configuration of a stack in `home` on free ports, with the test credentials.

    Other STACK_* variables of `base` (default: this process's environment), such as STACK_JAVA_HOME,
    STACK_CACHE or STACK_START_TIMEOUT, are kept.
    """
    env = dict(os.environ if base is None else base)
    env.update(
        zip(PORT_VARIABLES, map(str, free_ports(len(PORT_VARIABLES), avoid=STACK_DEFAULT_PORTS)), strict=True)
    )
    env.update({"STACK_HOME": str(home), **TEST_CREDENTIALS})
    return load_config(env)


def unavailable_reason(config: StackConfig) -> str | None:
    """Why the services cannot start on this machine, or None when every prerequisite is there."""
    try:
        find_java(config.java_home, MIN_JAVA, f"Trino {config.trino_version}")
        for binary in ("initdb", "postgres"):
            require_binary(binary, INSTALL_HINT, _server_dirs())
    except ServiceError as exc:
        return str(exc)
    if not shutil.which("redis-server") and (os.geteuid() != 0 or not shutil.which("apt-get")):
        return "redis-server is missing and this user cannot install it (apt-get install -y redis-server)"
    if not ObjectStore(config).binary.exists():
        try:
            find_go(os.environ.get("STACK_GO"))
        except ServiceError as exc:
            return f"MinIO is not built in {config.cache} and cannot be: {exc}"
    catalog_jars = RestCatalog(config).build_dir / "lib"
    if not (catalog_jars / ".complete").exists() and not shutil.which("mvn"):
        return f"the REST catalog's jars are not in {catalog_jars} and Maven (mvn) is missing"
    urls = [
        maven_url(config.maven_url, "io.trino", "trino-server-core", config.trino_version, ".tar.gz"),
        maven_url(config.maven_url, "io.trino", "trino-iceberg", config.trino_version, ".zip"),
    ]
    missing = [url for url in urls if not (config.cache / url.rsplit("/", 1)[1]).exists()]
    if not (catalog_jars / ".complete").exists():  # Maven resolves them from the same repository
        missing.append(maven_url(config.maven_url, "org.apache.iceberg", "iceberg-core", "1.10.1", ".pom"))
    for url in missing:
        try:
            urllib.request.urlopen(url + ".sha1", timeout=15).close()
        except OSError as exc:
            name = url.rsplit("/", 1)[1]
            return f"{name} is not in {config.cache} and Maven Central cannot be reached: {exc}"
    return None


def start_alone(service: Service) -> None:
    """Start one service of a stack's configuration alone (what it needs already runs).

    Raises:
        StackStartFailed: it did not start; the message holds `up`'s output.
    """
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = up(service.config, [service])
    if code != EXIT_OK:
        raise StackStartFailed(f"{service.name} did not start:\n{output.getvalue()}")


def stop_alone(service: Service) -> None:
    """Stop one service of a stack's configuration (fine when it is not running)."""
    with contextlib.redirect_stdout(io.StringIO()):
        down(service.config, [service])


def start_catalog(config: StackConfig) -> None:
    """Start the REST catalog server of `config` alone (its PostgreSQL and MinIO already run)."""
    start_alone(RestCatalog(config))


def stop_catalog(config: StackConfig) -> None:
    """Stop the REST catalog server of `config` (fine when it is not running)."""
    stop_alone(RestCatalog(config))


def client_env(config: StackConfig) -> dict[str, str]:
    """Variables pointing the platform's `stack` profile, S3 clients and dbt's Trino target at `config`."""
    return {**config.client_env(), "LAKEHOUSE_TRINO_USER": "lakehouse"}


@contextlib.contextmanager
def private_stack(prefix: str = "lakehouse-stack-") -> Iterator[StackServices]:
    """Start a private stack in a new folder under /tmp; stop it and remove the folder on the way out.

    The folder is not under pytest's tmp folders: those are private to root, and PostgreSQL runs as an
    unprivileged user who must reach its data folder.

    Raises:
        StackUnavailable: a prerequisite (Java 24+, PostgreSQL, Redis, the downloads) is missing.
        StackStartFailed: a service did not start; the message holds the output of `up`.
    """
    home = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    home.chmod(0o711)
    try:
        config = private_config(home)
        reason = unavailable_reason(config)
        if reason:
            raise StackUnavailable(reason)
        output = io.StringIO()
        try:
            with contextlib.redirect_stdout(output):
                code = up(config)
            if code != EXIT_OK:
                raise StackStartFailed(f"stack up exited with {code}:\n{output.getvalue()}")
            yield StackServices(config=config, env=client_env(config))
        finally:
            with contextlib.redirect_stdout(io.StringIO()):
                down(config)
    finally:
        shutil.rmtree(home, ignore_errors=True)
