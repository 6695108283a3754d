"""Fetch Maven Central artifacts once into the download cache, checked against their published SHA-1."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """Raised when an artifact cannot be fetched or does not match its checksum."""


def maven_url(base: str, group: str, artifact: str, version: str, suffix: str) -> str:
    """URL of `group:artifact:version` ending in `suffix` (".tar.gz", "-jar-with-dependencies.jar")."""
    return f"{base}/{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}{suffix}"


def _sha1(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_text(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return resp.read().decode().strip()
    except urllib.error.URLError as exc:
        raise DownloadError(f"cannot fetch {url}: {exc}") from exc


def cached_download(url: str, cache: Path, log: Callable[[str], None] = print) -> Path:
    """Return the cached copy of `url`, downloading it (and checking its .sha1) only when missing.

    Args:
        url: artifact URL; `<url>.sha1` must exist beside it.
        cache: download cache folder.
        log: where progress lines go.

    Returns:
        Path of the verified file in `cache`.
    """
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / url.rsplit("/", 1)[1]
    if target.exists():
        return target
    expected = _fetch_text(url + ".sha1").split()[0].lower()
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=cache)
    part = Path(name)
    log(f"downloading {url}")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(resp, out, CHUNK)
    except (OSError, urllib.error.URLError) as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"cannot download {url}: {exc}") from exc
    actual = _sha1(part)
    if actual != expected:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: SHA-1 {actual} does not match the published {expected}")
    part.replace(target)
    log(f"cached {target} ({target.stat().st_size // CHUNK} MiB)")
    return target


def unpack_once(archive: Path, dest: Path) -> Path:
    """Unpack a .tar.gz or .zip archive into `dest` unless an earlier unpack completed there.

    Returns:
        `dest`, holding the archive's top-level folder(s).
    """
    marker = dest / ".unpacked"
    if marker.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        if archive.name.endswith(".tar.gz"):
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        else:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        (tmp / ".unpacked").write_text(archive.name + "\n")
        if dest.exists() and not marker.exists():
            shutil.rmtree(dest)  # an unpack that was interrupted
        with contextlib.suppress(OSError):
            tmp.rename(dest)  # fails only when a concurrent unpack finished first
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return dest
