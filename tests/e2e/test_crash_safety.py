"""A run killed with SIGKILL mid-phase leaves a readable catalog; the next run ends as if nothing happened."""

from __future__ import annotations

from datetime import timedelta

import pytest

from components.core.settings import get_settings
from components.ingestion.ingest import run_ingest
from components.operations.maintenance import run_maintenance
from components.sources.ecommerce.generator import generate
from components.transformation.transform import run_transform
from testing.crashes import (
    kill_during,
    run_to_completion,
    silver_gold_content,
    temp_folder,
    unreadable_tables,
)

pytestmark = pytest.mark.e2e

#: The suite kills two runs; `bench/crash_trials.py` runs many more, in every phase.
TRIALS = [("dbt publish", 0.2), ("feast materialization", 3.0)]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Small source files, and the silver/gold content of a lakehouse built from them without a crash."""
    root = tmp_path_factory.mktemp("crash")
    data_dir = root / "data"
    generate(data_dir, scale=0.03, seed=5)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAKEHOUSE_HOME", str(root / "reference"))
        mp.setenv("LAKEHOUSE_DATA_DIR", str(data_dir))
        reference = get_settings("local")
        run_ingest(reference)
        run_transform(reference)
        return data_dir, silver_gold_content(reference)


@pytest.mark.parametrize(("phase", "delay"), TRIALS, ids=[phase for phase, _ in TRIALS])
def test_a_run_killed_mid_phase_recovers(source, tmp_path, monkeypatch, phase, delay):
    data_dir, expected = source
    home = tmp_path / "home"
    trial = kill_during(home, data_dir, phase, delay)
    assert trial.killed, f"the run ended before it could be killed during {phase}"
    left = sorted(path.name for path in temp_folder(home).iterdir())
    assert left == [], f"the killed run left {left} in the temporary folder (its state belongs in {home})"

    monkeypatch.setenv("LAKEHOUSE_HOME", str(home))
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(data_dir))
    settings = get_settings("local")
    assert unreadable_tables(settings) == []  # every table is at a committed snapshot

    run_to_completion(home, data_dir)
    assert silver_gold_content(settings) == expected
    left = sorted(path.name for path in temp_folder(home).iterdir())
    assert left == [] and not (home / "kfp" / "tmp").exists(), f"the run left {left} or its own kfp/tmp"

    reports = run_maintenance(
        settings, retention=timedelta(days=7), orphan_age=timedelta(0), remove_orphans=True
    )
    assert all(r.orphans_removed == len(r.orphan_files) for r in reports)
    assert unreadable_tables(settings) == []
    assert silver_gold_content(settings) == expected
