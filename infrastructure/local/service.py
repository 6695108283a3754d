"""What every stack service provides: preparation, a launch command, a health check, first-start setup."""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from infrastructure.local.config import StackConfig

Log = Callable[[str], None]


class ServiceError(RuntimeError):
    """Raised when a service cannot be prepared or started; the message says what to do."""


@dataclass(frozen=True)
class Launch:
    """How to run a server process in the foreground."""

    command: list[str]
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path | None = None
    user: str | None = None


class Service:
    """One server of the stack. Subclasses set `name`, `port_variable` and implement the hooks."""

    name: str = ""
    port_variable: str = ""
    #: Signal that asks the server for a clean shutdown (SIGKILL follows after `stop_grace` seconds).
    stop_signal: int = signal.SIGTERM
    stop_grace: float = 20.0

    def __init__(self, config: StackConfig) -> None:
        self.config = config

    @property
    def port(self) -> int:
        return self.config.ports()[self.name]

    @property
    def dir(self) -> Path:
        """This service's state folder under STACK_HOME."""
        return self.config.home / self.name

    @property
    def log_path(self) -> Path:
        return self.config.logs / f"{self.name}.log"

    def prepare(self, log: Log) -> None:
        """Install or download what is missing and write configuration; safe to run every time."""

    def launch(self) -> Launch:
        raise NotImplementedError

    def check(self) -> str:
        """Raise unless the server answers correctly; return a one-line description of its state."""
        raise NotImplementedError

    def after_start(self, log: Log) -> None:
        """Create what clients expect (databases, buckets); runs after every healthy start."""


def unprivileged_user(preferred: str) -> str | None:
    """User to run a server as: None when not root, else `preferred` if it exists, else `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in (preferred, "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise ServiceError(
        f"running as root and neither user {preferred!r} nor 'nobody' exists to run servers as"
    )


def own(path: Path, user: str | None) -> None:
    """Create `path` and give it (recursively) to `user` when running as root.

    Raises:
        ServiceError: `user` cannot reach `path` because a parent folder is private.
    """
    path.mkdir(parents=True, exist_ok=True)
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)]:
            if os.lstat(name).st_uid != entry.pw_uid:
                os.lchown(name, entry.pw_uid, entry.pw_gid)
    if subprocess.run(["test", "-w", str(path)], user=user, group=entry.pw_gid, check=False).returncode:
        raise ServiceError(
            f"user {user} cannot reach {path}: every parent folder needs search (x) permission "
            "for others; choose a STACK_HOME below such folders"
        )


def require_binary(name: str, hint: str, extra_dirs: list[Path] | None = None) -> str:
    """Full path of an executable from PATH (or `extra_dirs`), else a ServiceError carrying `hint`."""
    found = shutil.which(name)
    if found:
        return found
    for folder in extra_dirs or []:
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise ServiceError(f"{name} not found: {hint}")


#: Held while this platform runs apt-get: two of its processes installing at once (the test tiers, a build
#: beside a node) would otherwise fail on dpkg's lock; apt-get itself waits up to `APT_LOCK_WAIT` seconds
#: for anyone else's apt.
APT_LOCK = Path("/run/lock/lakehouse-apt.lock")
APT_LOCK_WAIT = 600


def install_debian_package(binary: str, package: str, log: Log, options: tuple[str, ...] = ()) -> str:
    """Return `binary` from PATH, installing Debian's `package` first (apt-get `options` added) when it is
    missing and this is root.

    Raises:
        ServiceError: the binary is missing and cannot be installed here; the message names the command.
    """
    found = shutil.which(binary)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ServiceError(f"{binary} not found: install it with `apt-get install -y {package}`")
    apt_install(package, lambda: bool(shutil.which(binary)), log, options)
    found = shutil.which(binary)
    if not found:
        raise ServiceError(f"{package} installed but {binary} is not on PATH")
    return found


def apt_install(
    package: str, present: Callable[[], bool], log: Log, options: tuple[str, ...] = (), lock: Path = APT_LOCK
) -> None:
    """`apt-get update` and `apt-get install -y package` (root), unless `present()` says it is there once
    `lock` is held: one install at a time on this machine.

    Raises:
        ServiceError: apt-get failed; the message names the command and ends with its output.
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if present():  # another process may have installed it meanwhile
            return
        wait = ("-o", f"DPkg::Lock::Timeout={APT_LOCK_WAIT}")
        for command in (
            ["apt-get", *wait, "update", "-qq"],
            ["apt-get", *wait, "install", "-y", "-qq", *options, package],
        ):
            log(f"{package}: running {' '.join(command)}")
            done = subprocess.run(
                command,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise ServiceError(f"{' '.join(command)} failed:\n{(done.stdout + done.stderr)[-2000:]}")
