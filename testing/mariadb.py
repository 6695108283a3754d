"""A private MariaDB for the tests: Debian's `mariadb-server` (installed when missing and running as root)
on a loopback port, its files in a folder of its own; stopped and started again on the same files when a
test takes the database away.

Without a `user` it runs with no grant tables (anyone connects, as root, with no password: the scratch
database the KFP API server test needs); with one, that user and password are the only account over TCP.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from components.core.ports import free_port
from infrastructure.local.procs import (
    ProcessRecord,
    log_tail,
    port_open,
    spawn,
    start_ticks,
    stop,
    wait_until,
)
from infrastructure.local.service import ServiceError, install_debian_package, own


class MariaDBUnavailable(RuntimeError):
    """MariaDB cannot be installed or started here; the message says why."""


@dataclass
class MariaDB:
    """One server: its files in `folder/data`, its log `folder/mariadb.log`, listening on 127.0.0.1:`port`."""

    folder: Path
    port: int
    user: str | None = None
    password: str = ""
    record: ProcessRecord | None = field(default=None, init=False)

    @property
    def datadir(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "mariadb.log"

    def start(self, timeout: float = 60) -> None:
        """Start it (creating its files on the first start) and wait until the port answers.

        Raises:
            MariaDBUnavailable: not installable here, or it did not start (the message ends with its log).
        """
        try:
            mariadbd = install_debian_package("mariadbd", "mariadb-server", lambda line: None)
            account = "mysql" if os.geteuid() == 0 else None
            own(self.datadir, account)
        except ServiceError as exc:
            raise MariaDBUnavailable(str(exc)) from None
        as_account = [f"--user={account}"] if account else []
        if not (self.datadir / "mysql").is_dir():
            install = ["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}", "--skip-test-db"]
            done = subprocess.run(install + as_account, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise MariaDBUnavailable(f"mariadb-install-db failed:\n{done.stderr[-1500:]}")
        command = [
            mariadbd,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.datadir}/mysqld.sock",
        ]
        command += [f"--port={self.port}", "--bind-address=127.0.0.1", "--skip-name-resolve"]
        command += ["--sql-mode=NO_ENGINE_SUBSTITUTION"]  # KFP inserts rows without every column
        command += self._accounts() + as_account
        pid = spawn(command, self.log)
        self.record = ProcessRecord(
            pid=pid, start_ticks=start_ticks(pid) or 0, port=self.port, command=command
        )
        alive = lambda: start_ticks(pid) == self.record.start_ticks  # noqa: E731
        if not wait_until(lambda: port_open(self.port), timeout, alive):
            self.stop()
            raise MariaDBUnavailable(f"MariaDB did not start:\n{log_tail(self.log)}")

    def _accounts(self) -> list[str]:
        if self.user is None:
            return ["--skip-grant-tables"]
        init = self.folder / "accounts.sql"  # run by the server at every start, as its own account
        init.write_text(
            f"CREATE USER IF NOT EXISTS '{self.user}'@'%' IDENTIFIED BY '{self.password}';\n"
            f"GRANT ALL PRIVILEGES ON *.* TO '{self.user}'@'%';\n"
        )
        init.chmod(0o644)
        return [f"--init-file={init}"]

    def stop(self) -> None:
        if self.record is not None:
            stop(self.record, signal.SIGTERM, grace=20)
            self.record = None


@contextlib.contextmanager
def private_mariadb(user: str | None = None, password: str = "") -> Iterator[MariaDB]:
    """A MariaDB started in a new folder under /tmp on a free port, stopped and removed after.

    Raises:
        MariaDBUnavailable: it cannot run here.
    """
    folder = Path(tempfile.mkdtemp(prefix="lakehouse-mariadb-", dir="/tmp"))
    folder.chmod(0o711)  # its account must reach the data folder inside
    server = MariaDB(folder, free_port(), user, password)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
