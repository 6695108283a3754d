"""The ML Metadata server's own virtual environment, installed from `requirements.txt` (exact pins, hashes).

The platform's environment cannot hold ml-metadata 1.17.1 (it needs protobuf 4.25), so the server runs from an
environment of its own. On this machine `server_environment()` creates it once under
`.cache/metadata-server/KEY/` (KEY: the requirements file's content and the Python version); the image's build
runs `python3 -m infrastructure.metadata.environment /opt/ml-metadata`, the same `create_environment`.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
CACHE = HERE.parents[1] / ".cache" / "metadata-server"
#: written last: an environment without it was interrupted and is made again
COMPLETE = ".complete"
#: what the server imports: a wheel that installed but cannot load fails here, not at the first request
IMPORT_CHECK = "import grpc, ml_metadata.metadata_store.pywrap.metadata_store_extension, ml_metadata.proto"

Log = Callable[[str], None]


class ServerEnvironmentError(RuntimeError):
    """The environment could not be made; the message names the failing command and its output's end."""


def requirements_key(requirements: Path = REQUIREMENTS) -> str:
    """What the environment depends on: the pinned requirements and this Python's version."""
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(f"python{sys.version_info.major}.{sys.version_info.minor}".encode())
    return digest.hexdigest()[:16]


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-2000:]
        raise ServerEnvironmentError(f"{what} failed ({' '.join(command)}):\n{output}")


def create_environment(target: Path, requirements: Path = REQUIREMENTS, log: Log = print) -> Path:
    """A new virtual environment at `target` (replacing what is there) with exactly `requirements`.

    pip installs wheels only, each checked against its hash, nothing the file does not name.

    Returns:
        The environment's `python`.

    Raises:
        ServerEnvironmentError: venv, pip or the import check failed.
    """
    log(f"ml-metadata server environment: installing {requirements.name} into {target}")
    _run([sys.executable, "-m", "venv", "--clear", str(target)], "creating the virtual environment")
    python = target / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--no-input"]
    pip += ["--require-hashes", "--no-deps", "--only-binary=:all:", "-r", str(requirements)]
    _run(pip, "installing the server's requirements")
    _run([str(python), "-c", IMPORT_CHECK], "importing ml-metadata")
    (target / COMPLETE).write_text(requirements_key(requirements) + "\n")
    return python


def server_environment(cache: Path = CACHE, requirements: Path = REQUIREMENTS, log: Log = print) -> Path:
    """The cached environment for the current requirements (made on first use), as its `python`.

    Environments of earlier requirements are removed; two callers at once make it once.

    Raises:
        ServerEnvironmentError: it could not be made (no network to PyPI, a wheel missing its hash...).
    """
    target = cache / requirements_key(requirements)
    python = target / "bin" / "python"
    if (target / COMPLETE).exists():
        return python
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / COMPLETE).exists():  # made by the caller this one waited for
            return python
        for stale in cache.iterdir():
            if stale.is_dir() and stale != target:
                shutil.rmtree(stale, ignore_errors=True)
        return create_environment(target, requirements, log)


def main(argv: list[str] | None = None) -> int:
    prog = "python3 -m infrastructure.metadata.environment"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("target", nargs="?", type=Path, help="where to create it (default: the cached one)")
    args = parser.parse_args(argv)
    try:
        log = lambda line: print(line, file=sys.stderr)  # noqa: E731 (stdout: the python's path alone)
        python = create_environment(args.target, log=log) if args.target else server_environment(log=log)
    except ServerEnvironmentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
