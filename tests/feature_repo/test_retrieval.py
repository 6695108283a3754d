"""Feature retrieval as users do it: the README's SDK examples, and Feast's HTTP feature server."""

from __future__ import annotations

import os
import re
import subprocess
import time

import httpx
import pandas as pd
import pytest

from components.core.feature_store import FEATURE_COLUMNS
from components.core.ports import free_port
from components.core.settings import REPO_ROOT
from components.features.materialize import apply_and_materialize
from testing.tiny_lakehouse import AS_OF_DATES, feature_row, local_lakehouse, write_gold_tables

README = REPO_ROOT / "feature_repo" / "README.md"
LATEST = len(AS_OF_DATES) - 1


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory):
    """The tiny gold tables, applied and materialized; the settings are the process's while it lasts."""
    with local_lakehouse(tmp_path_factory.mktemp("retrieval")) as settings:
        write_gold_tables(settings)
        apply_and_materialize(settings)
        yield settings


def _readme_block(language: str, containing: str) -> str:
    """The README's first fenced block in `language` that contains `containing`."""
    blocks = re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return next(block for block in blocks if containing in block)


def _expected(customer_id: int, week: int) -> dict:
    return {name: feature_row(customer_id, week)[name] for name in FEATURE_COLUMNS}


@pytest.fixture(scope="module")
def readme_example(lakehouse) -> dict:
    """The README's Python block, run as written."""
    namespace: dict = {}
    exec(compile(_readme_block("python", "get_historical_features"), str(README), "exec"), namespace)  # noqa: S102 - our own README
    return namespace


def test_online_retrieval_gives_each_customers_latest_row(readme_example):
    online = readme_example["online"]
    assert online["customer_id"] == [1, 2]
    for index, customer in enumerate((1, 2)):
        for name, value in _expected(customer, LATEST).items():
            assert online[name][index] == pytest.approx(value), (customer, name)


def test_offline_retrieval_is_point_in_time_for_your_own_timestamps(readme_example):
    history = readme_example["history"].sort_values("customer_id").reset_index(drop=True)
    # 2025-01-10 falls after the first weekly row (01-06); 2025-01-20 is the third one's own date
    for row, (customer, week) in zip(history.itertuples(), ((1, 0), (2, 2)), strict=True):
        for name, value in _expected(customer, week).items():
            got = getattr(row, name)
            assert (pd.isna(got) and value is None) or got == pytest.approx(value), (customer, name)


def test_feast_http_server_answers_the_same_values(lakehouse, readme_example):
    port = free_port()
    # the README's command, on a free port; `env $(python -m pipelines.env)` is `settings.env()` here
    line = next(
        ln for ln in _readme_block("sh", "feast -c feature_repo serve").splitlines() if " serve " in ln
    )
    words = line.split()
    serve = words[words.index(".venv/bin/feast") :]
    serve[0] = str(REPO_ROOT / serve[0])
    serve[serve.index("--port") + 1] = str(port)
    env = {**os.environ, **lakehouse.env()}
    log = lakehouse.home / "feast-serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(serve, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "feast serve did not answer /health in 180 s"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        body = {"feature_service": "churn_v1", "entities": {"customer_id": [1, 2, 999]}}
        answer = httpx.post(f"{url}/get-online-features", json=body, timeout=30)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert answer.status_code == 200, answer.text
    payload = answer.json()
    names = payload["metadata"]["feature_names"]
    results = dict(zip(names, payload["results"], strict=True))
    assert results["customer_id"]["values"] == [1, 2, 999]
    online = readme_example["online"]
    for name in FEATURE_COLUMNS:
        assert results[name]["values"][:2] == pytest.approx(online[name]), name
        assert results[name]["statuses"] == ["PRESENT", "PRESENT", "NOT_FOUND"], name
