"""Cache keys of images built from a Dockerfile: the Dockerfile, the files its COPY lines send, the inputs."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path


def copied_sources(dockerfile_text: str) -> list[str]:
    """The context paths a Dockerfile's `COPY`/`ADD` lines send (not `--from=` copies between stages), and
    those its `RUN --mount=type=bind,source=...` steps read."""
    sources: list[str] = []
    logical = dockerfile_text.replace("\\\n", " ")
    for line in logical.splitlines():
        if line.split(None, 1)[:1] in (["RUN"], ["run"]):
            for mount in re.findall(r"--mount=(\S+)", line):
                options = dict(part.partition("=")[::2] for part in mount.split(","))
                if options.get("type") == "bind" and "from" not in options:
                    sources.append(options.get("source") or options.get("src") or ".")
            continue
        if line.split(None, 1)[:1] not in (["COPY"], ["ADD"], ["copy"], ["add"]):
            continue
        words = shlex.split(line)
        arguments = [word for word in words[1:] if not word.startswith("--")]
        if any(word.startswith("--from") for word in words[1:]) or len(arguments) < 2:
            continue
        sources += arguments[:-1]
    return sources


def ignore_patterns(dockerignore: Path) -> list[str]:
    """The patterns of a `.dockerignore` (empty when there is none)."""
    if not dockerignore.exists():
        return []
    lines = (line.strip() for line in dockerignore.read_text().splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def ignored(relative: str, patterns: Sequence[str]) -> bool:
    """Whether `relative` (or a folder it is in) matches a `.dockerignore` pattern (`**/`: at any depth)."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    for pattern in patterns:
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, pattern):
                return True
            if pattern.startswith("**/") and fnmatch.fnmatchcase(prefix.rsplit("/", 1)[-1], pattern[3:]):
                return True
    return False


def context_files(context: Path, sources: Iterable[str], patterns: Sequence[str]) -> list[Path]:
    """Every file the `sources` name under `context`, less what `.dockerignore` leaves out, sorted.

    Raises:
        FileNotFoundError: a source does not exist (the build would fail the same way).
    """
    found: set[Path] = set()
    for source in sources:
        path = context / source.rstrip("/")
        if not path.exists():
            raise FileNotFoundError(f"{source} (copied by the Dockerfile) is missing from {context}")
        for file in [path] if path.is_file() else path.rglob("*"):
            relative = file.relative_to(context).as_posix()
            if (file.is_file() or file.is_symlink()) and not ignored(relative, patterns):
                found.add(file)
    return sorted(found)


def image_key(
    dockerfile: Path,
    context: Path,
    inputs: Sequence[Path] = (),
    extra: dict | None = None,
) -> str:
    """Short sha256 over the Dockerfile, every file it copies from `context` (paths and bytes), `inputs`
    (files staged beside it: binaries, archives) and `extra` (base image digest, build arguments).

    The same key means the same build: a second build of it is skipped.
    """
    text = dockerfile.read_text()
    patterns = ignore_patterns(context / ".dockerignore")
    digest = hashlib.sha256()
    digest.update(text.encode() + b"\0")
    digest.update(json.dumps(extra or {}, sort_keys=True).encode() + b"\0")
    for file in context_files(context, copied_sources(text), patterns):
        digest.update(file.relative_to(context).as_posix().encode() + b"\0")
        digest.update(_content(file) + b"\0")
    for file in sorted(inputs):
        digest.update(file.name.encode() + b"\0")
        digest.update(_content(file) + b"\0")
    return digest.hexdigest()[:12]


def _content(file: Path) -> bytes:
    if file.is_symlink():
        return b"link:" + str(file.readlink()).encode()
    sha = hashlib.sha256()
    with file.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            sha.update(chunk)
    return sha.digest()
