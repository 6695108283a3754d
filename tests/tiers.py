"""`make test`: the default tier and, beside it, the single-node cluster tier, as two pytest processes.

The node tier (`pytest tests/node -m node`) spends most of its time waiting: on image builds' downloads,
on pods becoming ready, on Argo moving a KFP run from one step's pods to the next. Run after the default
tier it would add its whole length to the suite; run beside it, it shares the cores with it instead.
Its output goes to a file, shown and removed when both tiers have ended (`tail -f` it to follow along).
The exit status is the default tier's when that failed, else the node tier's. On an empty cache the node
tier's builds (Go programs, images) are the suite's longest path: they run at the default tier's CPU
priority (`LAKEHOUSE_BUILD_NICE=0` unless set), not below it as builds otherwise do.

    python -m tests.tiers [pytest options for the default tier]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NODE_TIER = ["tests/node", "-m", "node", "-p", "no:cacheprovider"]


def main(argv: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest"]
    log = Path(tempfile.mkdtemp(prefix="lakehouse-node-tier-")) / "pytest.log"
    with log.open("wb") as out:
        print(f"the single-node cluster tier runs beside this one; its output: {log}", flush=True)
        env = {"LAKEHOUSE_BUILD_NICE": "0", **os.environ}
        node = subprocess.Popen([*pytest, *NODE_TIER], stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            default = subprocess.run([*pytest, *argv], check=False).returncode
            if node.poll() is None:
                print(f"\nwaiting for the single-node cluster tier (its output: {log})", flush=True)
        finally:
            # Ctrl-C reaches both processes (one process group): the node tier tears its node down first.
            node_status = node.wait()
    print(f"\n{' the single-node cluster tier: pytest ' + ' '.join(NODE_TIER) + ' ':=^100}", flush=True)
    sys.stdout.write(log.read_text(errors="replace"))
    shutil.rmtree(log.parent)  # shown above: nothing left in the temporary folder
    return default or node_status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
