"""Debian packages installed by the platform's commands: one apt-get at a time on the machine."""

from __future__ import annotations

import subprocess
import sys
import time

from infrastructure.local.service import apt_install

HOLD = """
import fcntl, sys, time
lock = open(sys.argv[1], "a")
fcntl.flock(lock, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_an_install_waits_for_another_holding_the_lock_then_finds_the_package_there(tmp_path):
    """Two of the platform's processes installing at once (the test tiers, a build beside a node) made one
    fail on dpkg's lock: the second now waits for the first, then looks again and installs nothing."""
    lock = tmp_path / "apt.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), "3"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    started, looked = time.monotonic(), []
    apt_install("a-package", lambda: looked.append(time.monotonic()) or True, lambda line: None, lock=lock)
    holder.wait(timeout=10)
    assert len(looked) == 1 and looked[0] - started > 2, "it looked only once the other had let go"
