"""Table maintenance: expire old snapshots, find and remove orphan files, compact small data files."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from components.core.catalog import get_catalog
from components.core.settings import BRONZE, GOLD, SILVER, Settings

if TYPE_CHECKING:
    from pyarrow.fs import FileSystem
    from pyiceberg.table import Table

log = logging.getLogger(__name__)

#: The namespaces whose tables the platform writes and maintains.
LAKEHOUSE_NAMESPACES = (BRONZE, SILVER, GOLD)
#: A partition holding at least this many data files smaller than half the target size is compacted.
SMALL_FILES_PER_PARTITION = 2


@dataclass
class TableReport:
    """What maintenance found and did on one table."""

    identifier: str
    snapshots_expired: int = 0
    orphan_files: list[str] = field(default_factory=list)
    orphans_removed: int = 0
    data_files_before: int = 0
    data_files_after: int | None = None  # None: not compacted

    def summary(self) -> str:
        parts = [f"{self.snapshots_expired} snapshots expired", f"{len(self.orphan_files)} orphan files"]
        if self.orphans_removed:
            parts[-1] += f" ({self.orphans_removed} removed)"
        if self.data_files_after is not None:
            parts.append(f"compacted {self.data_files_before} -> {self.data_files_after} data files")
        return f"{self.identifier}: " + ", ".join(parts)


def lakehouse_tables(settings: Settings) -> list[str]:
    """Every table of the lakehouse namespaces, as `namespace.name`."""
    catalog = get_catalog(settings)
    present = {ns[0] for ns in catalog.list_namespaces()}
    return [
        ".".join(ident)
        for namespace in LAKEHOUSE_NAMESPACES
        if namespace in present
        for ident in sorted(catalog.list_tables(namespace))
    ]


def run_maintenance(
    settings: Settings,
    retention: timedelta,
    orphan_age: timedelta = timedelta(hours=1),
    remove_orphans: bool = False,
    compact: bool = False,
) -> list[TableReport]:
    """Maintain every lakehouse table: expire snapshots, list (and remove) orphans, compact.

    Args:
        settings: the profile's settings.
        retention: snapshots older than this are expired (the current one and tagged ones never are).
        orphan_age: a file the table does not reference counts as an orphan only when older than this, so
            the files of a writer still at work are never taken.
        remove_orphans: delete the orphan files found (else they are only listed).
        compact: rewrite tables whose partitions hold several small data files (one new snapshot).
    """
    catalog = get_catalog(settings)
    now = datetime.now(UTC)
    reports = []
    for identifier in lakehouse_tables(settings):
        table = catalog.load_table(identifier)
        report = TableReport(identifier)
        if compact:
            _compact(table, report)
            table = catalog.load_table(identifier)
        report.snapshots_expired = _expire(table, now - retention)
        table = catalog.load_table(identifier)
        report.orphan_files = orphan_files(table, now - orphan_age)
        if remove_orphans and report.orphan_files:
            fs, _ = _filesystem(table)
            for path in report.orphan_files:
                fs.delete_file(_fs_path(path))
            report.orphans_removed = len(report.orphan_files)
        reports.append(report)
        log.info("%s", report.summary())
    return reports


def _expire(table: Table, before: datetime) -> int:
    current = table.current_snapshot()
    keep = current.snapshot_id if current else None
    cutoff_ms = before.timestamp() * 1000
    old = [s.snapshot_id for s in table.snapshots() if s.timestamp_ms < cutoff_ms and s.snapshot_id != keep]
    if not old:
        return 0
    table.maintenance.expire_snapshots().older_than(before).commit()
    return len(old) - len({s.snapshot_id for s in table.refresh().snapshots()} & set(old))


def referenced_files(table: Table) -> set[str]:
    """Every file the table's metadata references: metadata (current and logged), manifest lists,
    manifests, data and delete files of every snapshot, statistics files."""
    metadata = table.metadata
    files = {table.metadata_location, *(entry.metadata_file for entry in metadata.metadata_log)}
    files |= {stats.statistics_path for stats in metadata.statistics}
    for snapshot in table.snapshots():
        files.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            files.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                files.add(entry.data_file.file_path)
    return {_fs_path(path) for path in files}


def orphan_files(table: Table, older_than: datetime) -> list[str]:
    """Files under the table's location that its metadata does not reference, last written before
    `older_than` (a killed writer leaves such files behind; an unfinished one is not yet old enough)."""
    from pyarrow.fs import FileSelector, FileType

    fs, root = _filesystem(table)
    try:
        infos = fs.get_file_info(FileSelector(root, recursive=True, allow_not_found=True))
    except OSError:
        return []
    known = referenced_files(table)
    cutoff = older_than.timestamp()
    return sorted(
        info.path
        for info in infos
        if info.type == FileType.File
        and _fs_path(info.path) not in known
        and (info.mtime is None or info.mtime.timestamp() < cutoff)
    )


def _compact(table: Table, report: TableReport) -> None:
    files = table.inspect.files().select(["content", "partition", "file_size_in_bytes"]).to_pylist()
    data = [f for f in files if f["content"] == 0]
    report.data_files_before = len(data)
    target = int(table.properties.get("write.target-file-size-bytes", 512 * 1024 * 1024))
    per_partition: dict[str, int] = {}
    for f in data:
        if f["file_size_in_bytes"] < target // 2:
            key = repr(f["partition"])
            per_partition[key] = per_partition.get(key, 0) + 1
    has_deletes = any(f["content"] != 0 for f in files)
    if not has_deletes and max(per_partition.values(), default=0) < SMALL_FILES_PER_PARTITION:
        return
    rows = table.scan().to_arrow()
    with table.transaction() as tx:
        tx.overwrite(rows, snapshot_properties={"lakehouse.operation": "compaction"})
    after = table.refresh().inspect.files().select(["content"]).to_pylist()
    report.data_files_after = sum(f["content"] == 0 for f in after)


def _filesystem(table: Table) -> tuple[FileSystem, str]:
    """The pyarrow file system of the table's location (S3 settings as the catalog's), and its root."""
    from pyiceberg.io.pyarrow import PyArrowFileIO

    location = urlsplit(table.location())
    io = table.io if isinstance(table.io, PyArrowFileIO) else PyArrowFileIO(table.io.properties)
    fs = io.fs_by_scheme(location.scheme or "file", location.netloc)
    return fs, _fs_path(table.location())


def _fs_path(uri: str) -> str:
    """A location as the pyarrow file system names it: no scheme; the bucket first for object stores."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        return parts.path
    return f"{parts.netloc}{parts.path}"
