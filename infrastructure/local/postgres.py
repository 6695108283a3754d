"""PostgreSQL for the stack: own cluster under STACK_HOME, trust on 127.0.0.1, catalog and MLflow DBs."""

from __future__ import annotations

import pwd
import signal
import subprocess
from pathlib import Path

from infrastructure.local.config import PG_DATABASES, PG_USER
from infrastructure.local.service import (
    Launch,
    Log,
    Service,
    ServiceError,
    own,
    require_binary,
    unprivileged_user,
)

INSTALL_HINT = "install the PostgreSQL server with `apt-get install -y postgresql`"
HBA = """# Written by stack.sh: trust, but only over TCP from this machine's loopback address.
host    all             all             127.0.0.1/32            trust
"""


def _server_dirs() -> list[Path]:
    return sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class Postgres(Service):
    """The metadata database: the REST catalog's JDBC tables (`iceberg_catalog`) and MLflow's (`mlflow`)."""

    name = "postgres"
    port_variable = "STACK_PG_PORT"
    # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
    stop_signal = signal.SIGINT

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    def _binary(self, name: str) -> str:
        return require_binary(name, INSTALL_HINT, _server_dirs())

    def prepare(self, log: Log) -> None:
        initdb, user = self._binary("initdb"), unprivileged_user("postgres")
        gid = pwd.getpwnam(user).pw_gid if user else None
        self._binary("postgres")
        own(self.dir, user)
        if not (self.data_dir / "PG_VERSION").exists():
            log(f"postgres: initdb {self.data_dir} (superuser {PG_USER}, run as {user or 'current user'})")
            command = [initdb, "-D", str(self.data_dir), "-U", PG_USER, "--auth=trust", "-E", "UTF8"]
            command += ["--locale=C.UTF-8", "--no-instructions"]
            with self.log_path.open("ab") as out:
                done = subprocess.run(
                    command, stdout=out, stderr=subprocess.STDOUT, user=user, group=gid, check=False
                )
            if done.returncode != 0:
                raise ServiceError(f"initdb failed with exit code {done.returncode}; see {self.log_path}")
        (self.data_dir / "pg_hba.conf").write_text(HBA)
        own(self.dir, user)

    def launch(self) -> Launch:
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": "",
            "max_connections": "100",
            "shared_buffers": "64MB",
            "logging_collector": "off",
        }
        command = [self._binary("postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        return Launch(command=command, cwd=self.dir, user=unprivileged_user("postgres"))

    def _connect(self, database: str = "postgres"):
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1", port=self.port, user=PG_USER, dbname=database, connect_timeout=3
        )
        conn.autocommit = True
        return conn

    def check(self) -> str:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW server_version")
                version = cur.fetchone()[0]
        finally:
            conn.close()
        return f"PostgreSQL {version}"

    def after_start(self, log: Log) -> None:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                for database in PG_DATABASES:
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                    if cur.fetchone() is None:
                        log(f"postgres: creating database {database}")
                        cur.execute(f'CREATE DATABASE "{database}" OWNER "{PG_USER}"')
        finally:
            conn.close()
