"""Load the model servers' sealed prediction log segments into `bronze.prediction_log`, each exactly once.

Every commit names the segments it holds in its snapshot summary (`lakehouse.prediction-log.segments`);
only then are the segments deleted from the store. A load stopped between the two finds the names in the
table's history on its next run and deletes those segments without loading them again; two loads at once
cannot both commit a segment, since Iceberg refuses an append on a snapshot that is no longer current and
the loser retries with what is still unloaded. A segment with lines that could not be read (a last line cut
off mid-write) is loaded up to its last whole record and kept aside, under `rejected/`, with the lines named.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from components.core.catalog import get_catalog
from components.core.prediction_log import (
    Segment,
    SegmentStore,
    arrow_schema,
    as_of_timestamp,
    read_segment,
    seal_orphans,
    segment_store,
)
from components.core.settings import BRONZE, Settings

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.table import Table

log = logging.getLogger(__name__)

TABLE = f"{BRONZE}.prediction_log"
#: The snapshot summary property listing the segments a commit loaded (comma-separated).
SEGMENTS_PROPERTY = "lakehouse.prediction-log.segments"
#: Segments committed together (each a few MB at most): bounds a load's memory.
SEGMENTS_PER_COMMIT = 200
COMMIT_TRIES = 5
#: Table properties: pyiceberg must not re-apply a refused append on the newer snapshot by itself (it would
#: load segments another load just committed); the loader retries after checking what is loaded.
TABLE_PROPERTIES = {"commit.retry.num-retries": "0"}


@dataclass
class PredictionLogLoad:
    """What a load did: rows and segments committed, segments found loaded already, what was left out."""

    table: str
    rows: int = 0
    segments: list[str] = field(default_factory=list)
    already_loaded: list[str] = field(default_factory=list)
    orphans_sealed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    snapshot_ids: list[int] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.rows} predictions from {len(self.segments)} segments into {self.table}"]
        if self.already_loaded:
            parts.append(f"{len(self.already_loaded)} segments were loaded before (removed now)")
        if self.orphans_sealed:
            parts.append(f"{len(self.orphans_sealed)} segments left open by a stopped server sealed first")
        if self.problems:
            parts.append(f"{len(self.problems)} lines left out (kept under rejected/)")
        return "; ".join(parts)


def prediction_log_table(settings: Settings) -> Table:
    """`bronze.prediction_log`, created (partitioned by the day of `logged_at`) when missing, with
    `TABLE_PROPERTIES`, and the columns of `arrow_schema()` it lacks added."""
    from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError, TableAlreadyExistsError
    from pyiceberg.transforms import DayTransform

    catalog = get_catalog(settings)
    try:
        table = catalog.load_table(TABLE)
    except NoSuchTableError:
        with contextlib.suppress(NamespaceAlreadyExistsError):
            catalog.create_namespace(BRONZE)
        try:
            table = catalog.create_table(TABLE, schema=arrow_schema(), properties=TABLE_PROPERTIES)
        except TableAlreadyExistsError:  # another load created it meanwhile
            table = catalog.load_table(TABLE)
    missing = [name for name in arrow_schema().names if name not in table.schema().column_names]
    if missing:  # a table an earlier release created: new columns are added, rows already there keep nulls
        with table.update_schema() as update:
            update.union_by_name(arrow_schema())
        table = table.refresh()
        log.info("%s: added the column(s) %s", TABLE, ", ".join(missing))
    if not table.spec().fields:
        with table.update_spec() as spec:
            spec.add_field("logged_at", DayTransform(), "logged_day")
        table = table.refresh()
    if any(table.properties.get(key) != value for key, value in TABLE_PROPERTIES.items()):
        with table.transaction() as tx:
            tx.set_properties(TABLE_PROPERTIES)
        table = table.refresh()
    return table


def loaded_segments(table: Table) -> set[str]:
    """The segments every snapshot of the table's history says it loaded."""
    names: set[str] = set()
    for snapshot in table.snapshots():
        listed = snapshot.summary[SEGMENTS_PROPERTY] if snapshot.summary else None
        if listed:
            names.update(listed.split(","))
    return names


def _rows(segments: Iterable[Segment]) -> pa.Table:
    import orjson
    import pyarrow as pa

    columns: dict[str, list] = {name: [] for name in arrow_schema().names}
    for segment in segments:
        for record in segment.records:
            for name in columns:
                if name == "logged_at":
                    columns[name].append(record["logged_at_us"])
                elif name == "features":
                    features = record["features"]
                    columns[name].append(None if features is None else orjson.dumps(features).decode())
                elif name == "features_as_of":
                    columns[name].append(as_of_timestamp(record[name]))
                elif name == "segment":
                    columns[name].append(segment.name)
                else:
                    columns[name].append(record[name])
    schema = arrow_schema()
    return pa.Table.from_arrays([pa.array(columns[f.name], type=f.type) for f in schema], schema=schema)


def _commit(table: Table, segments: list[Segment], result: PredictionLogLoad) -> list[Segment]:
    """Append the segments' records in one snapshot naming them; the segments this load committed."""
    from pyiceberg.exceptions import CommitFailedException

    for attempt in range(1, COMMIT_TRIES + 1):
        done = loaded_segments(table)
        result.already_loaded += [s.name for s in segments if s.name in done]
        segments = [s for s in segments if s.name not in done]
        if not segments:
            return []
        rows = _rows(segments)
        try:
            table.append(rows, snapshot_properties={SEGMENTS_PROPERTY: ",".join(s.name for s in segments)})
        except CommitFailedException:
            if attempt == COMMIT_TRIES:
                raise
            log.info("another load committed to %s meanwhile; checking which segments are left", TABLE)
            table = table.refresh()
            continue
        result.rows += rows.num_rows
        snapshot = table.current_snapshot()
        result.snapshot_ids.append(snapshot.snapshot_id if snapshot else -1)
        return segments
    return []


def _read(store: SegmentStore, names: list[str]) -> Iterator[Segment]:
    """The segments still there (another load may have committed and deleted some since they were listed)."""
    for name in names:
        try:
            data = store.read(name)
        except FileNotFoundError:
            continue
        yield read_segment(name, data)


def load_prediction_log(settings: Settings) -> PredictionLogLoad:
    """Seal what stopped servers left open in this machine's spool, then load every sealed segment."""
    store: SegmentStore = segment_store(settings)
    result = PredictionLogLoad(TABLE)
    spool = Path(settings.prediction_log_spool) if settings.prediction_log_spool else None
    if spool is not None and spool.is_dir():
        result.orphans_sealed = seal_orphans(spool, store)
    names = store.names()
    if not names:
        return result
    table = prediction_log_table(settings)
    for start in range(0, len(names), SEGMENTS_PER_COMMIT):
        batch = list(_read(store, names[start : start + SEGMENTS_PER_COMMIT]))
        committed = _commit(table, batch, result)
        table = table.refresh()
        result.segments += [s.name for s in committed]
        for segment in batch:
            if segment.problems:
                result.problems += segment.problems
                store.set_aside(segment.name)
            else:
                store.delete(segment.name)
    for problem in result.problems:
        log.warning("prediction log: %s", problem)
    return result
