"""Crash trials: `lakehouse run` killed with SIGKILL during a chosen phase, then checked and run again."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from components.core.catalog import get_catalog
from components.core.settings import GOLD, REPO_ROOT, SILVER, Settings
from components.monitoring.monitor import FEATURE_DRIFT
from components.monitoring.performance import MODEL_PERFORMANCE
from components.monitoring.triggers import RETRAINING_TRIGGERS
from components.operations.maintenance import lakehouse_tables
from components.scoring.score import CHURN_SCORES
from testing.fingerprints import content_fingerprint

#: A line of `lakehouse run`'s output that opens each phase a trial can kill, and the longest delay after it.
PHASES: dict[str, tuple[re.Pattern[str], float]] = {
    "ingestion": (re.compile(r"Executing task '?ingest"), 8.0),
    "dbt publish": (re.compile(r"(published: \d+ rows|unchanged, snapshot)"), 1.5),
    "feast materialization": (re.compile(r"Executing task '?features"), 10.0),
    "model registration": (re.compile(r"Successfully registered model|Created version"), 1.0),
}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Trial:
    """One killed run: the phase, the delay after its first line, whether the kill came before the end."""

    phase: str
    delay: float
    killed: bool
    seconds: float


def temp_folder(home: Path) -> Path:
    """The temporary folder the runs in `home` are given (`TMPDIR`), to see what a killed run leaves there."""
    return home.parent / f"{home.name}-tmp"


def run_command(home: Path, data_dir: Path) -> tuple[list[str], dict[str, str]]:
    """`lakehouse run` on the `local` profile in `home`, as a command and its environment."""
    temp_folder(home).mkdir(parents=True, exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")},
        "LAKEHOUSE_HOME": str(home),
        "LAKEHOUSE_DATA_DIR": str(data_dir),
        "LAKEHOUSE_PROFILE": "local",
        "TMPDIR": str(temp_folder(home)),
    }
    return [sys.executable, "-m", "pipelines.cli", "run"], env


def run_to_completion(home: Path, data_dir: Path, timeout: float = 1800) -> None:
    """Run the whole pipeline; raise with the tail of its output when it fails."""
    command, env = run_command(home, data_dir)
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise AssertionError(f"lakehouse run failed with {done.returncode}:\n{tail}")


def kill_during(home: Path, data_dir: Path, phase: str, delay: float, timeout: float = 1800) -> Trial:
    """Start `lakehouse run`, and `delay` seconds after `phase` begins SIGKILL it with all its children.

    The run is its own process group (its steps, dbt and every other child in it): killing the group is
    what a crash of the machine or the pod does.
    """
    pattern, _ = PHASES[phase]
    command, env = run_command(home, data_dir)
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen = threading.Event()

    def watch() -> None:
        for line in proc.stdout:
            if not seen.is_set() and pattern.search(_ANSI.sub("", line)):
                seen.set()

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    killed = False
    while proc.poll() is None and time.monotonic() - started < timeout:
        if seen.wait(0.2):
            time.sleep(delay)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
            break
    proc.wait(timeout=60)
    reader.join(timeout=10)
    return Trial(phase=phase, delay=delay, killed=killed, seconds=time.monotonic() - started)


def unreadable_tables(settings: Settings) -> list[str]:
    """Tables whose current snapshot cannot be read whole (a missing file, a broken manifest)."""
    catalog = get_catalog(settings)
    broken = []
    for identifier in lakehouse_tables(settings):
        try:
            catalog.load_table(identifier).scan().to_arrow()
        except Exception as exc:  # noqa: BLE001 - any failure to read is what this looks for
            broken.append(f"{identifier}: {type(exc).__name__}: {exc}")
    return broken


#: Gold tables the model steps write (scores, drift and quality of the champion, stamped with the time they
#: ran): a run that trains its own model is compared on what dbt builds, not on these.
MODEL_OUTPUTS = frozenset({CHURN_SCORES, FEATURE_DRIFT, MODEL_PERFORMANCE, RETRAINING_TRIGGERS})


def silver_gold_content(settings: Settings) -> dict[str, dict[str, object]]:
    """Order-independent fingerprints of every silver and gold table dbt builds, load ids left out."""
    catalog = get_catalog(settings)
    return {
        identifier: content_fingerprint(catalog.load_table(identifier).scan().to_arrow())
        for identifier in lakehouse_tables(settings)
        if identifier.split(".")[0] in (SILVER, GOLD) and identifier not in MODEL_OUTPUTS
    }
