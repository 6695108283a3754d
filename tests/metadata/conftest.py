"""The ML Metadata server for real: its own environment (made once into `.cache/metadata-server/`), a private
MariaDB on a free loopback port, and server processes on free ports, on MariaDB and on SQLite."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.core.ports import free_ports
from infrastructure.local.procs import (
    ProcessRecord,
    log_tail,
    port_open,
    spawn,
    start_ticks,
    stop,
    wait_until,
)
from infrastructure.metadata.environment import ServerEnvironmentError, server_environment
from testing.mariadb import MariaDB, MariaDBUnavailable, private_mariadb
from testing.prerequisites import unavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).with_name("kfp_client.py")
START_LINE = "server: gRPC on"


@dataclass(frozen=True)
class MetadataServer:
    """A running server: `target` for gRPC clients (HOST:PORT), `web` its gRPC-Web base URL."""

    python: Path
    target: str
    web: str
    log: Path
    record: ProcessRecord

    def alive(self) -> bool:
        return start_ticks(self.record.pid) == self.record.start_ticks

    def kfp_client(self, run: str) -> subprocess.CompletedProcess:
        """`kfp_client.py` against this server, in the server's environment."""
        host, port = self.target.rsplit(":", 1)
        command = [str(self.python), str(CLIENT), host, port, run]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@contextlib.contextmanager
def metadata_server(
    python: Path, folder: Path, args: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> Iterator[MetadataServer]:
    """`python -m infrastructure.metadata ARGS` on two free loopback ports until its start line is logged."""
    grpc_port, web_port = free_ports(2)
    command = [str(python), "-m", "infrastructure.metadata", f"--grpc_port={grpc_port}"]
    command += [f"--grpc_web_port={web_port}", "--listen_address=127.0.0.1", *args]
    log = folder / f"server-{grpc_port}.log"
    pid = spawn(command, log, env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}, cwd=REPO_ROOT)
    record = ProcessRecord(pid=pid, start_ticks=start_ticks(pid) or 0, port=grpc_port, command=command)
    server = MetadataServer(python, f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{web_port}", log, record)
    try:
        started = lambda: START_LINE in log.read_text() and port_open(web_port)  # noqa: E731
        if not wait_until(started, 60, server.alive):
            pytest.fail(f"the metadata server did not start:\n{log_tail(log)}", pytrace=False)
        yield server
    finally:
        stop(record, signal.SIGTERM, grace=10)


@pytest.fixture(scope="session")
def server_python() -> Path:
    """The server's environment's `python` (created on first use, then cached by its requirements)."""
    try:
        return server_environment(log=lambda line: None)
    except ServerEnvironmentError as exc:
        unavailable(f"the ML Metadata server's environment cannot be made here: {exc}", "the metadata server")


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    """A private MariaDB with one account (user `kfp`, a random password), as Kubeflow's manifests set it."""
    try:
        with private_mariadb(user="kfp", password=secrets.token_hex(12)) as server:
            yield server
    except MariaDBUnavailable as exc:
        unavailable(f"MariaDB cannot run here: {exc}", "MariaDB")


@pytest.fixture(scope="session")
def scratch() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="lakehouse-metadata-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def kfp_environment(database: MariaDB, name: str = "metadb") -> dict[str, str]:
    """The variables Kubeflow's metadata-grpc-deployment sets, for `database`."""
    return {
        "MYSQL_HOST": "127.0.0.1",
        "MYSQL_PORT": str(database.port),
        "MYSQL_DATABASE": name,
        "DBCONFIG_USER": database.user or "root",
        "DBCONFIG_PASSWORD": database.password,
    }


@pytest.fixture(scope="session")
def on_mariadb(server_python: Path, mariadb: MariaDB, scratch: Path) -> Iterator[MetadataServer]:
    """The server on the private MariaDB, set by Kubeflow's variables (its database created by the server)."""
    with metadata_server(server_python, scratch, env=kfp_environment(mariadb)) as server:
        yield server


@pytest.fixture(scope="session")
def on_sqlite(server_python: Path, scratch: Path) -> Iterator[MetadataServer]:
    with metadata_server(server_python, scratch, [f"--sqlite_path={scratch / 'metadata.sqlite'}"]) as server:
        yield server


@pytest.fixture(params=["mariadb", "sqlite"])
def server(request: pytest.FixtureRequest) -> MetadataServer:
    return request.getfixturevalue(f"on_{request.param}")
