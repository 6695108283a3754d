"""Where the export files wait for ingestion when they are not in the data folder: an object store prefix.

On the `cluster` profile the ingest step's image holds code only: the exports are uploaded to
`settings.sources_uri` (`lakehouse data upload`, or whatever exports them writes there) and the step copies
`<table>.csv` from there into its data folder before reading them as on every other profile.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from components.core.settings import SOURCE_TABLES, Settings
from components.sources.ecommerce.files import SourceFileError

if TYPE_CHECKING:
    from pyarrow.fs import FileSystem

CHUNK_BYTES = 1 << 20


class SourceStoreError(SourceFileError):
    """The exports cannot be copied to or from the object store; the message names the object and the fix."""


def _store(settings: Settings) -> tuple[FileSystem, str]:
    """The file system and bucket/prefix of `settings.sources_uri` (an `s3://` URI)."""
    from pyiceberg.io.pyarrow import PyArrowFileIO

    parts = urlsplit(settings.sources_uri)
    if parts.scheme not in ("s3", "s3a") or not parts.netloc:
        raise SourceStoreError(
            f"sources_uri {settings.sources_uri!r} is not an object store prefix (s3://bucket/prefix)"
        )
    fs = PyArrowFileIO(settings.s3_properties()).fs_by_scheme(parts.scheme, parts.netloc)
    return fs, f"{parts.netloc}{parts.path}".rstrip("/")


def fetch_exports(settings: Settings, tables: Sequence[str] = SOURCE_TABLES) -> list[Path]:
    """Copy `<sources_uri>/<table>.csv` of each table into the data folder (each file whole or not at all);
    nothing to do when `sources_uri` is empty (the exports are in the data folder already).

    Raises:
        SourceStoreError: an export is missing from the store or the store cannot be read (named).
    """
    if not settings.sources_uri:
        return []
    fs, root = _store(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fetched = []
    for table in tables:
        source, target = f"{root}/{table}.csv", settings.data_dir / f"{table}.csv"
        partial = target.with_name(f".{target.name}.part")
        try:
            with fs.open_input_stream(source) as stream, partial.open("wb") as out:
                shutil.copyfileobj(stream, out, CHUNK_BYTES)
        except FileNotFoundError:
            partial.unlink(missing_ok=True)
            raise SourceStoreError(
                f"s3://{source} is missing: upload the exports first (`lakehouse data upload`)"
            ) from None
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise SourceStoreError(f"cannot read s3://{source} ({settings.s3_endpoint}): {exc}") from None
        os.replace(partial, target)
        fetched.append(target)
    return fetched


def upload_exports(settings: Settings, tables: Sequence[str] = SOURCE_TABLES) -> list[str]:
    """Copy the data folder's `<table>.csv` of each table to `sources_uri`; return the objects written.

    Every file is checked to exist before the first is uploaded, so a missing one changes nothing.

    Raises:
        SourceStoreError: `sources_uri` is not an object store prefix, a file is missing, or the store refused
            a write (named).
    """
    fs, root = _store(settings)
    files = [settings.data_dir / f"{table}.csv" for table in tables]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise SourceStoreError(f"no export file {', '.join(missing)} (run `lakehouse data generate`)")
    written = []
    for path in files:
        target = f"{root}/{path.name}"
        try:
            with path.open("rb") as fh, fs.open_output_stream(target) as out:
                shutil.copyfileobj(fh, out, CHUNK_BYTES)
        except OSError as exc:
            raise SourceStoreError(f"cannot write s3://{target} ({settings.s3_endpoint}): {exc}") from None
        written.append(f"s3://{target}")
    return written
