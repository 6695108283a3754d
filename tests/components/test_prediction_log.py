"""The prediction log's writer and loader on real files and a real Iceberg catalog: rotation, bounds, a line
cut off mid-write, a load stopped before it cleaned up, two loads at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from components.core.prediction_log import SEALED_SUFFIX, read_segment, segment_store
from components.core.settings import Settings
from components.ingestion.prediction_log import SEGMENTS_PROPERTY, TABLE, load_prediction_log
from serving.prediction_log import PredictionLog
from testing.predictions import answered


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    from testing.tiny_lakehouse import local_lakehouse

    with local_lakehouse(tmp_path / "lakehouse") as settings:
        yield settings


def put_segment(settings: Settings, name: str, data: bytes) -> None:
    path = Path(settings.prediction_log_uri)
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{name}{SEALED_SUFFIX}").write_bytes(data)


def logged(settings: Settings) -> list[dict]:
    from components.core.catalog import read_table

    return read_table(TABLE, settings).to_pylist()


def test_the_writer_rotates_and_a_close_seals_what_is_queued(settings: Settings) -> None:
    log = PredictionLog(
        Path(settings.prediction_log_spool), segment_store(settings), rotate_seconds=0.3, flush_seconds=0.05
    )
    log.log(answered("a", [1, 2]))
    time.sleep(0.8)  # flushed, then sealed by rotation
    log.log(answered("b", [3]))
    log.close()
    store = segment_store(settings)
    assert len(store.names()) == 2
    records = [r for name in store.names() for r in read_segment(name, store.read(name)).records]
    assert [(r["request_id"], r["customer_id"]) for r in records] == [("a", 1), ("a", 2), ("b", 3)]
    assert records[0]["features"] == {"tenure_days": 10.0, "region": "north"}
    assert records[0]["features_as_of"] == "2025-11-30 00:00:00"
    assert not list(Path(settings.prediction_log_spool).iterdir())


def test_a_full_queue_drops_and_counts_instead_of_growing(settings: Settings) -> None:
    log = PredictionLog(
        Path(settings.prediction_log_spool), segment_store(settings), flush_seconds=60, max_pending=2
    )
    for index in range(5):
        log.log(answered(f"r{index}", [index, index + 100]))
    assert len(log.pending) == 2 and log.dropped == 6
    log.close()
    assert log.written == 4


def test_a_line_cut_off_mid_write_is_left_out_named_and_kept(settings: Settings) -> None:
    whole = answered("whole", [1, 2, 3]).lines()
    put_segment(settings, "cut", whole + answered("cut", [4]).lines()[:25])

    result = load_prediction_log(settings)

    assert result.rows == 3 and [row["customer_id"] for row in logged(settings)] == [1, 2, 3]
    assert {row["features_as_of"] for row in logged(settings)} == {datetime(2025, 11, 30)}
    assert result.problems == ["cut: line 4 was cut off mid-write; its 25 bytes are left out"]
    rejected = Path(settings.prediction_log_uri) / "rejected" / f"cut{SEALED_SUFFIX}"
    assert rejected.read_bytes().startswith(whole), "the segment is kept, not deleted"
    assert segment_store(settings).names() == []


def test_a_segment_loaded_before_a_stop_is_not_loaded_again(settings: Settings) -> None:
    data = answered("once", [7, 8]).lines()
    put_segment(settings, "seg-1", data)
    first = load_prediction_log(settings)
    assert first.segments == ["seg-1"] and first.rows == 2
    put_segment(settings, "seg-1", data)  # as if the load had stopped after its commit, before deleting

    second = load_prediction_log(settings)

    assert second.rows == 0 and second.already_loaded == ["seg-1"]
    assert len(logged(settings)) == 2 and segment_store(settings).names() == []
    from components.core.catalog import get_catalog

    table = get_catalog(settings).load_table(TABLE)
    assert table.current_snapshot().summary[SEGMENTS_PROPERTY] == "seg-1"
    assert [field.name for field in table.spec().fields] == ["logged_day"]


def test_two_loads_at_once_commit_each_segment_once(settings: Settings) -> None:
    from components.ingestion.prediction_log import prediction_log_table

    prediction_log_table(settings)  # the catalog's own tables first: SQLite's are not made for a race
    for index in range(12):
        put_segment(settings, f"seg-{index:02d}", answered(f"r{index}", [index, index + 50]).lines())
    results, errors = [], []

    def load() -> None:
        try:
            results.append(load_prediction_log(settings))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    rows = logged(settings)
    assert len(rows) == 24 == sum(result.rows for result in results)
    assert len({(row["request_id"], row["customer_id"]) for row in rows}) == 24


@pytest.mark.parametrize(
    "logged",
    ["2025-11-30T00:00:00+00:00", "2025-11-30T01:00:00+01:00", "2025-11-30 00:00:00", "1764460800"],
    ids=["redis", "offset", "naive", "sqlite-epoch"],
)
def test_the_as_of_of_online_features_reads_as_naive_utc_whatever_the_store(logged: str) -> None:
    from components.core.prediction_log import as_of_timestamp

    assert as_of_timestamp(logged) == datetime(2025, 11, 30)


def test_the_challenger_is_scored_by_the_logs_thread_and_its_failure_costs_the_champion_nothing(
    settings: Settings,
) -> None:
    import numpy as np

    from serving.prediction_log import Shadow

    failures = []
    log = PredictionLog(
        Path(settings.prediction_log_spool),
        segment_store(settings),
        flush_seconds=60,
        on_shadow_failure=lambda exc, count: failures.append((str(exc), count)),
    )

    def broken(rows):
        raise ValueError("challenger cannot score")

    log.log(
        answered(
            "shadowed", [1, 2], known=[True, False], shadow=Shadow("4", lambda rows: np.full(len(rows), 0.75))
        )
    )
    log.log(answered("broken", [3], shadow=Shadow("5", broken)))
    log.close()

    store = segment_store(settings)
    records = [r for name in store.names() for r in read_segment(name, store.read(name)).records]
    seen = [
        (r["request_id"], r["customer_id"], r["role"], r["model_version"], r["probability"]) for r in records
    ]
    assert seen == [
        ("shadowed", 1, "champion", "3", 0.25),
        ("shadowed", 2, "champion", "3", None),
        ("shadowed", 1, "challenger", "4", 0.75),
        ("shadowed", 2, "challenger", "4", None),
        ("broken", 3, "champion", "3", 0.25),
    ]
    assert log.shadow_failures == 1 and failures == [("challenger cannot score", 1)]


def test_a_table_an_earlier_release_made_gets_the_new_columns(settings: Settings) -> None:
    """bronze.prediction_log as first released, without `features_as_of`: the next load adds the column."""
    import pyarrow as pa

    from components.core.catalog import get_catalog
    from components.core.prediction_log import arrow_schema

    old = pa.schema([field for field in arrow_schema() if field.name != "features_as_of"])
    catalog = get_catalog(settings)
    catalog.create_namespace_if_not_exists("bronze")
    catalog.create_table(TABLE, schema=old).append(
        pa.Table.from_pylist([{name: None for name in old.names} | _old_row()], schema=old)
    )
    put_segment(settings, "new", answered("new", [5]).lines())

    assert load_prediction_log(settings).rows == 1
    rows = {row["request_id"]: row for row in logged(settings)}
    assert rows["old"]["features_as_of"] is None and rows["new"]["features_as_of"] == datetime(2025, 11, 30)


def _old_row() -> dict:
    return {
        "request_id": "old",
        "logged_at": datetime(2025, 11, 29),
        "customer_id": 4,
        "model_name": "churn_propensity",
        "role": "champion",
        "protocol": "v1",
        "known": False,
        "segment": "old",
    }
