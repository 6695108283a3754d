"""Triton's Python client (`tritonclient`), the most common Open Inference Protocol client, in a virtual
environment of its own (its HTTP client pins an older greenlet than the platform's lock has).

`triton_python()` builds `.cache/tritonclient/<hash of the requirements>/` once from `tritonclient.txt` (every
version pinned with its hash); `ask(...)` runs `triton_checks.py` in it against a model server.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from components.core.settings import REPO_ROOT

REQUIREMENTS = Path(__file__).with_name("tritonclient.txt")
CHECKS = Path(__file__).with_name("triton_checks.py")


def _uv() -> str:
    bootstrap = REPO_ROOT / ".cache" / "uv-bootstrap" / "bin" / "uv"
    found = str(bootstrap) if bootstrap.is_file() else shutil.which("uv")
    if not found:
        raise RuntimeError("uv is needed to build tritonclient's environment: run `make install` first")
    return found


def triton_python() -> Path:
    """The Python of tritonclient's environment, built when missing (a stamp marks a finished build)."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    home = REPO_ROOT / ".cache" / "tritonclient" / digest
    python, stamp = home / "bin" / "python", home / ".complete"
    if stamp.is_file():
        return python
    shutil.rmtree(home, ignore_errors=True)
    uv = _uv()
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(home)], check=True)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--require-hashes",
            "--python",
            str(python),
            "-r",
            str(REQUIREMENTS),
        ],
        check=True,
    )
    stamp.touch()
    return python


def ask(http_url: str, grpc_address: str, customers: list[int]) -> dict:
    """Run the client's checks against a server; what each call answered, as `triton_checks.py` prints it."""
    done = subprocess.run(
        [str(triton_python()), str(CHECKS), http_url, grpc_address, *map(str, customers)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tritonclient checks failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)
