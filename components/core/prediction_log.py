"""The prediction log's files: what the model server writes and the loader reads, and where they wait between.

Each model server process appends one JSON line per scored customer to a segment of its own in the spool
folder (`<spool>/<segment>.open`, held under an exclusive `flock` while the process writes it). A segment is
*sealed* when it is rotated or the process stops: moved (same file system) or uploaded (object store) to
the segment store, `settings.prediction_log_uri`, under `<segment>.jsonl`. The loader reads sealed segments
only. A segment whose writer died (its lock is free) is an *orphan*: sealed by the next process that opens
the same spool folder, or by the loader, as it is: a last line cut off mid-write is left out when read.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from components.core.settings import Settings

if TYPE_CHECKING:
    import pyarrow as pa
    from pyarrow.fs import FileSystem

log = logging.getLogger(__name__)

OPEN_SUFFIX, SEALED_SUFFIX = ".open", ".jsonl"
#: The fields of a record (one scored customer), in the table's column order; see `arrow_schema`.
FIELDS = (
    "request_id",
    "logged_at_us",
    "customer_id",
    "model_name",
    "model_version",
    "role",
    "protocol",
    "known",
    "probability",
    "latency_ms",
    "features",
    "features_as_of",
)


def arrow_schema() -> pa.Schema:
    """The Arrow schema of loaded records: `logged_at` a UTC timestamp in microseconds, `features` the
    feature values as one JSON object (null where the customer was unknown), `probability` null likewise,
    `features_as_of` the as-of date the features describe (naive UTC, as `gold.churn_labels.as_of_ts`)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("request_id", pa.string(), nullable=False),
            pa.field("logged_at", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("customer_id", pa.int64(), nullable=False),
            pa.field("model_name", pa.string(), nullable=False),
            pa.field("model_version", pa.string()),
            pa.field("role", pa.string(), nullable=False),
            pa.field("protocol", pa.string(), nullable=False),
            pa.field("known", pa.bool_(), nullable=False),
            pa.field("probability", pa.float64()),
            pa.field("latency_ms", pa.float64()),
            pa.field("features", pa.string()),
            pa.field("features_as_of", pa.timestamp("us")),
            pa.field("segment", pa.string(), nullable=False),
        ]
    )


def new_segment_name() -> str:
    """A segment name no other process picks, sorting by when it was opened: UTC time, host, pid and a random
    part (pids repeat across pods)."""
    opened = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    host = "".join(c if c.isalnum() or c == "_" else "_" for c in socket.gethostname())[:40] or "host"
    return f"{opened}-{host}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def as_of_timestamp(value: Any) -> datetime | None:
    """A logged `features_as_of` as a naive UTC datetime: ISO text, with or without offset (Redis), or epoch
    seconds (what Feast's SQLite store keeps)."""
    if value is None:
        return None
    text = str(value)
    if text.replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(text), UTC).replace(tzinfo=None)
    stamp = datetime.fromisoformat(text)
    return stamp.astimezone(UTC).replace(tzinfo=None) if stamp.tzinfo else stamp


def encode(record: dict[str, Any]) -> bytes:
    """One record as a JSON line."""
    return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY, default=str) + b"\n"


@dataclass
class Segment:
    """The whole records of one sealed segment, and what could not be read (a line cut off mid-write)."""

    name: str
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_segment(name: str, data: bytes) -> Segment:
    """Parse a segment's bytes: every whole JSON line with every field is a record; the rest is reported.

    Only a last line without its newline can be cut off by a stopped writer; it and any line that does not
    parse are left out and named in `problems` (segment, line number, bytes), never loaded half.
    """
    segment = Segment(name)
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: empty unless the last record was cut off
    for number, line in enumerate(lines, start=1):
        if not line:
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            segment.problems.append(f"{name}: line {number} is not JSON ({exc}); {len(line)} bytes left out")
            continue
        missing = [key for key in FIELDS if key not in record] if isinstance(record, dict) else list(FIELDS)
        if missing:
            segment.problems.append(f"{name}: line {number} lacks {', '.join(missing)}; left out")
            continue
        segment.records.append(record)
    if tail:
        segment.problems.append(
            f"{name}: line {len(lines) + 1} was cut off mid-write; its {len(tail)} bytes are left out"
        )
    return segment


class SegmentStore:
    """Where sealed segments wait for the loader: a folder, or a prefix of an object store (`s3://...`).

    Args:
        uri: `settings.prediction_log_uri`: a path, `file://` URI or `s3://bucket/prefix`.
        settings: for an object store's endpoint and keys.
    """

    def __init__(self, uri: str, settings: Settings):
        from pyiceberg.io.pyarrow import PyArrowFileIO

        parts = urlsplit(uri)
        scheme = parts.scheme if parts.scheme and len(parts.scheme) > 1 else "file"
        self.uri = uri
        self.local = scheme == "file"
        if self.local:
            self.root = str(Path(parts.path if parts.scheme else uri).resolve())
            Path(self.root).mkdir(parents=True, exist_ok=True)
        else:
            self.root = f"{parts.netloc}{parts.path}".rstrip("/")
        self.fs: FileSystem = PyArrowFileIO(settings.s3_properties()).fs_by_scheme(scheme, parts.netloc)

    def path(self, name: str) -> str:
        return f"{self.root}/{name}{SEALED_SUFFIX}"

    def put(self, source: Path, name: str) -> None:
        """Seal `source` (a spool file) as segment `name`: a rename within a folder, else an upload first."""
        target = self.path(name)
        if self.local:
            os.replace(source, target)
            return
        with source.open("rb") as fh, self.fs.open_output_stream(target) as out:
            shutil.copyfileobj(fh, out, 1 << 20)
        source.unlink()

    def names(self) -> list[str]:
        """The sealed segments, oldest first (by name)."""
        from pyarrow.fs import FileSelector, FileType

        infos = self.fs.get_file_info(FileSelector(self.root, allow_not_found=True))
        return sorted(
            info.base_name.removesuffix(SEALED_SUFFIX)
            for info in infos
            if info.type == FileType.File and info.base_name.endswith(SEALED_SUFFIX)
        )

    def read(self, name: str) -> bytes:
        with self.fs.open_input_stream(self.path(name)) as stream:
            return stream.read()

    def set_aside(self, name: str) -> None:
        """Move a segment with unreadable lines to `rejected/`, where the loader no longer looks."""
        self.fs.create_dir(f"{self.root}/rejected", recursive=True)
        with contextlib.suppress(FileNotFoundError):  # another load set it aside first
            self.fs.move(self.path(name), f"{self.root}/rejected/{name}{SEALED_SUFFIX}")

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self.path(name))


def segment_store(settings: Settings) -> SegmentStore:
    return SegmentStore(settings.prediction_log_uri, settings)


@contextlib.contextmanager
def _unlocked(path: Path) -> Iterator[bool]:
    """True when no process holds `path`'s lock (its writer is gone); the lock is held for the block."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        yield False
        return
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def seal_orphans(spool: Path, store: SegmentStore) -> list[str]:
    """Seal the spool's segments whose writer is gone (killed, or stopped before sealing); their names.

    A segment is sealed as it is; a last line cut off mid-write is reported when the segment is loaded.
    """
    sealed = []
    for path in sorted(spool.glob(f"*{OPEN_SUFFIX}")):
        with _unlocked(path) as orphan:
            if orphan:
                name = path.name.removesuffix(OPEN_SUFFIX)
                store.put(path, name)
                sealed.append(name)
                log.warning("sealed the prediction log segment %s its writer left open", name)
    return sealed
