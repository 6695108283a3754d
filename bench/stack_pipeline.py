"""Wall time of the whole `churn-training` pipeline on the `stack` profile (kfp.local), on a private stack.

Starts a private stack on free ports under /tmp (timed: `up`), generates the data at `--scale`, runs the
pipeline once (`first`: every table built) and again on the same data (`second`: nothing new to load), then
stops the stack and removes its folders. Prints seconds and the machine's load average after each run.
The script only uses entry points the stack has had from the start, so it also measures an older checkout
of the repository (before and after a change of the stack's services).

    .venv/bin/python -m bench.stack_pipeline --scale 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from components.core.ports import free_port
from components.core.settings import get_settings, scoped_environ
from components.sources.ecommerce.generator import generate
from pipelines.run_local import run_local
from testing.stack import StackUnavailable, private_stack


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="lakehouse-bench-pipeline-"))
    generate(root / "data", scale=args.scale, seed=42)
    rows = []
    began = time.monotonic()
    try:
        with private_stack(prefix="lakehouse-bench-pipeline-stack-") as stack:
            rows.append(("up", time.monotonic() - began))
            env = {
                **stack.env,
                "LAKEHOUSE_HOME": str(root / "home"),
                "LAKEHOUSE_DATA_DIR": str(root / "data"),
                "LAKEHOUSE_SERVING_PORT": str(free_port()),
            }
            with scoped_environ(env):
                settings = get_settings("stack")
                for run in ("first", "second"):
                    start = time.monotonic()
                    run_local(settings)
                    rows.append((run, time.monotonic() - start, os.getloadavg()[0]))
    except StackUnavailable as exc:
        print(f"the stack services cannot start here: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"scale {args.scale}: catalog {settings.catalog_type} at {settings.catalog_uri}")
    for row in rows:
        load = f"  (load average {row[2]:.1f})" if len(row) > 2 else ""
        print(f"{row[0]:>6}: {row[1]:7.1f} s{load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
