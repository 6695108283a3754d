"""Benchmark: the whole pipeline (`lakehouse run`) at several scales: wall time per stage and peak memory.

For each scale it generates the source files and runs the pipeline as a user does, in a fresh state folder
under `.lakehouse/bench-scale/`, sampling the resident memory of the whole process tree (the runner, each
step's process, dbt) twice a second. Stage times come from the runner's own task start and end lines.

    .venv/bin/python -m bench.scale --scales 1 8 64
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import psutil

from components.core.settings import REPO_ROOT

GIB = 1024**3
_TASK = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) - INFO - (Executing task|Task) '?([\w-]+)'?( finished)?")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def tree_rss(root: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants."""
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def run_measured(command: list[str], env: dict[str, str], log: Path) -> tuple[float, int, int]:
    """Run `command`, writing its output to `log`; returns (seconds, peak tree RSS in bytes, exit code)."""
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.5):
                peak = max(peak, tree_rss(root))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        done.set()
        sampler.join()
    return time.monotonic() - started, peak, code


def stage_seconds(log: Path) -> dict[str, float]:
    """Seconds per pipeline task, from kfp.local's `Executing task` and `Task ... finished` lines."""
    begun: dict[str, datetime] = {}
    seconds: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        match = _TASK.match(_ANSI.sub("", line))
        if not match:
            continue
        at = datetime.strptime(match.group(1), "%H:%M:%S.%f")
        task = match.group(3)
        if match.group(2) == "Executing task":
            begun[task] = at
        elif match.group(4) and task in begun:
            seconds[task] = (at - begun[task]).total_seconds() % 86400
    return seconds


def measure(scale: float, root: Path) -> dict[str, object]:
    home = root / f"scale-{scale:g}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")},
        "LAKEHOUSE_HOME": str(home),
        "LAKEHOUSE_DATA_DIR": str(home / "data"),
    }
    cli = [sys.executable, "-m", "pipelines.cli"]
    generate = [*cli, "data", "generate", "--scale", f"{scale:g}", "--seed", "42", "--no-dvc"]
    gen_s, gen_rss, code = run_measured(generate, env, home / "generate.log")
    if code:
        raise SystemExit(f"generate failed at scale {scale}: see {home / 'generate.log'}")
    run_s, run_rss, code = run_measured([*cli, "run"], env, home / "run.log")
    if code:
        raise SystemExit(f"lakehouse run failed at scale {scale}: see {home / 'run.log'}")
    rows = re.findall(r"^\s+(\w+)\s+([\d,]+) rows$", (home / "generate.log").read_text(), re.MULTILINE)
    return {
        "scale": scale,
        "rows": {table: int(count.replace(",", "")) for table, count in rows},
        "generate": gen_s,
        "stages": stage_seconds(home / "run.log"),
        "run": run_s,
        "peak_rss": max(gen_rss, run_rss),
        "load": os.getloadavg()[0],
    }


def report(results: list[dict[str, object]]) -> None:
    stages = list(dict.fromkeys(s for r in results for s in r["stages"]))
    print("\nseconds per stage (the pipeline as `lakehouse run` runs it):")
    print(f"{'stage':<22}" + "".join(f"{'scale ' + format(r['scale'], 'g'):>14}" for r in results))
    rows = [("generate data", [r["generate"] for r in results])]
    rows += [(stage, [r["stages"].get(stage, float("nan")) for r in results]) for stage in stages]
    rows.append(("lakehouse run, whole", [r["run"] for r in results]))
    for label, values in rows:
        print(f"{label:<22}" + "".join(f"{v:>14.1f}" for v in values))
    print(f"{'peak RSS, GiB':<22}" + "".join(f"{r['peak_rss'] / GIB:>14.2f}" for r in results))
    print(f"{'orders':<22}" + "".join(f"{r['rows'].get('orders', 0):>14,}" for r in results))
    print(f"{'order items':<22}" + "".join(f"{r['rows'].get('order_items', 0):>14,}" for r in results))
    print(f"{'load average after':<22}" + "".join(f"{r['load']:>14.1f}" for r in results))
    for before, after in zip(results, results[1:], strict=False):
        factor = after["scale"] / before["scale"]
        print(f"\ngrowth from scale {before['scale']:g} to {after['scale']:g} (x{factor:g} data), times:")
        for label, values in rows:
            i = results.index(before)
            ratio = values[i + 1] / values[i] if values[i] else float("nan")
            flag = "  <- more than linear" if ratio > factor * 1.1 else ""
            print(f"  {label:<22}{ratio:>8.2f}{flag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 8.0, 64.0])
    args = parser.parse_args()
    root = REPO_ROOT / ".lakehouse" / "bench-scale"
    results = []
    for scale in args.scales:
        print(f"scale {scale:g} ...", flush=True)
        results.append(measure(scale, root))
        print(f"  done: run {results[-1]['run']:.0f} s, peak RSS {results[-1]['peak_rss'] / GIB:.2f} GiB")
    report(results)


if __name__ == "__main__":
    main()
