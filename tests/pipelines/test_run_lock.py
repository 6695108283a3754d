"""One run per lakehouse: a second one fails fast naming the first, or waits; a killed holder frees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from components.core.settings import get_settings
from pipelines.cli import main
from pipelines.run_lock import LOCK_FILE, LakehouseBusy, lakehouse_lock

HOLD = textwrap.dedent(
    """
    import sys, time
    from components.core.settings import get_settings
    from pipelines.run_lock import lakehouse_lock
    with lakehouse_lock(get_settings("local")):
        print("held", flush=True)
        time.sleep(float(sys.argv[1]))
    print("released", flush=True)
    """
)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    return get_settings("local")


def hold(seconds: float) -> subprocess.Popen:
    """Another process that takes the lock and keeps it for `seconds`."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(seconds)], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_fails_fast_naming_the_first(settings):
    holder = hold(30)
    try:
        started = time.monotonic()
        with (
            pytest.raises(LakehouseBusy, match=rf"run {holder.pid} on .* holds .*{LOCK_FILE}"),
            lakehouse_lock(settings),
        ):
            pass
        assert time.monotonic() - started < 2
    finally:
        holder.kill()
        holder.wait()


def test_a_second_run_can_wait_for_the_first(settings):
    holder = hold(2)
    started = time.monotonic()
    with lakehouse_lock(settings, wait=30, poll=0.1):
        assert time.monotonic() - started >= 1  # it waited for the holder's two seconds
    assert holder.stdout.readline().strip() == "released"
    holder.wait()


def test_a_killed_holder_leaves_the_lakehouse_free(settings):
    holder = hold(60)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with lakehouse_lock(settings):
        pass


def test_cli_run_on_a_busy_lakehouse_says_so_in_one_line(settings, capsys):
    holder = hold(30)
    try:
        assert main(["run"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: the 'local' lakehouse") and "--wait" in err and "\n" not in err
    finally:
        holder.kill()
        holder.wait()
