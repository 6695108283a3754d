"""The prediction log on the `stack` profile: segments sealed into the object store, loaded through the REST
catalog once, and read by Trino."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.core.catalog import get_catalog
from components.core.prediction_log import OPEN_SUFFIX, segment_store
from components.core.settings import Settings, get_settings, scoped_environ
from components.ingestion.prediction_log import TABLE, load_prediction_log
from serving.prediction_log import PredictionLog
from testing.predictions import answered
from testing.stack import StackServices

pytestmark = pytest.mark.stack


@pytest.fixture
def settings(stack: StackServices, tmp_path: Path) -> Iterator[Settings]:
    prefix = f"s3://lakehouse/prediction-log-test-{uuid.uuid4().hex[:8]}"
    overrides = {"LAKEHOUSE_HOME": str(tmp_path), "LAKEHOUSE_PREDICTION_LOG_URI": prefix}
    with scoped_environ({**stack.env, **overrides}):  # the clients read the stack's keys from the environment
        settings = get_settings("stack")
        yield settings
        catalog = get_catalog(settings)
        if catalog.table_exists(TABLE):
            catalog.purge_table(TABLE)


def test_segments_go_through_the_object_store_and_load_once(stack: StackServices, settings: Settings) -> None:
    spool = Path(settings.prediction_log_spool)
    log = PredictionLog(spool, segment_store(settings), flush_seconds=0.05)
    log.log(answered("a", [1, 2, 3]))
    log.close()
    orphan = spool / f"left-by-a-killed-server{OPEN_SUFFIX}"
    orphan.write_bytes(answered("b", [4]).lines())
    assert not list(spool.glob("*.jsonl")) and len(segment_store(settings).names()) == 1, "sealed into S3"

    result = load_prediction_log(settings)

    assert result.orphans_sealed == ["left-by-a-killed-server"] and result.rows == 4
    assert segment_store(settings).names() == [], "loaded segments leave the object store"
    assert stack.trino(f"SELECT request_id, count(*) FROM {TABLE} GROUP BY 1 ORDER BY 1") == [
        ["a", 3],
        ["b", 1],
    ]
    assert load_prediction_log(settings).rows == 0
    assert stack.trino(f"SELECT count(*) FROM {TABLE}") == [[4]]
