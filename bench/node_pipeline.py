"""The whole churn pipeline as a Kubeflow Pipelines run of pods on a private single-node cluster, against the
same pipeline under `kfp.local` on the same data, and the machine's memory while the node runs the platform.

Starts a node of its own (free ports, its own address ranges and state folder under /tmp; root), builds or
finds the images and imports them, applies the `node` overlay and waits until every workload is ready,
compiles the pipeline for `cluster`, submits it with `lakehouse submit --wait`, and reads each step's time
from its pods; then runs `lakehouse run` (kfp.local, profile `local`) on the source files the platform image
carries, in a fresh state folder. Memory: the machine's used memory (MemTotal - MemAvailable) before the
node starts, and its peak, sampled every second from `up` to the end of the KFP run. Removes the node and
its folder after.

    .venv/bin/python -m bench.node_pipeline
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from components.core.ports import free_ports
from infrastructure.cluster.manifests import objects, render
from infrastructure.images.build import build_images, import_into_node
from infrastructure.node.config import DEFAULT_PORTS, load_config
from infrastructure.node.node import down, kubectl, settled, up
from pipelines.submit import NODE_NAME, step_of
from testing.manifests import filled_copy

REPO = Path(__file__).resolve().parents[1]
LAKEHOUSE = Path(sys.executable).with_name("lakehouse")
IMAGES = ("platform", "postgres", "redis", "minio", "minio-client", "rest-catalog", "trino", "mariadb")
IMAGES += ("metadata", "kfp-backend", "argo", "kserve-controller", "kfp-ui")


def used_memory() -> int:
    """Bytes in use on the machine: MemTotal - MemAvailable."""
    fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return (int(fields["MemTotal"].split()[0]) - int(fields["MemAvailable"].split()[0])) * 1024


class PeakMemory(threading.Thread):
    """Samples `used_memory()` every second until stopped; `peak` is the largest sample."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self._halt = used_memory(), threading.Event()

    def run(self) -> None:
        while not self._halt.wait(1.0):
            self.peak = max(self.peak, used_memory())

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


def _seconds(start: str, end: str) -> float:
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def step_times(config, namespace: str = "lakehouse") -> list[tuple[str, float, float]]:
    """Per step: (task name, seconds its executor pod's main container ran, seconds from the driver pod's
    creation to the executor's end), in the order they started."""
    listed = kubectl(
        config, "-n", namespace, "get", "pods", "-l", "workflows.argoproj.io/workflow", "-o", "json"
    )
    pods = {
        pod["metadata"]["annotations"].get(NODE_NAME, ""): pod for pod in json.loads(listed.stdout)["items"]
    }
    # a step's driver pod: `<run>.root.<task>-driver`
    last = {name: name.rsplit(".", 1)[-1] for name in pods}
    drivers = {
        last[name].removesuffix("-driver"): pod
        for name, pod in pods.items()
        if last[name].endswith("-driver")
    }
    rows = []
    for name, pod in pods.items():
        task = step_of(name)
        if task is None:
            continue
        states = {c["name"]: c["state"] for c in pod["status"].get("containerStatuses", [])}
        main = states.get("main", {}).get("terminated", {})
        driver = drivers.get(task)
        if not main or driver is None:
            continue
        created = driver["metadata"]["creationTimestamp"]
        rows.append(
            (
                created,
                task,
                _seconds(main["startedAt"], main["finishedAt"]),
                _seconds(created, main["finishedAt"]),
            )
        )
    return [row[1:] for row in sorted(rows)]


def main(argv: Sequence[str] | None = None) -> int:
    root = Path(tempfile.mkdtemp(prefix="lakehouse-bench-node-"))
    try:
        return measure(root, argv)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(root: Path, argv: Sequence[str] | None) -> int:
    """Everything above, in the folder `root` (removed by the caller)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the KFP run")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("a node needs root", file=sys.stderr)
        return 2
    ports = dict(zip(DEFAULT_PORTS, free_ports(len(DEFAULT_PORTS)), strict=True))
    environ = {
        "LAKEHOUSE_CLUSTER_POD_CIDR": "10.246.0.0/16",
        "LAKEHOUSE_CLUSTER_SERVICE_CIDR": "10.98.0.0/16",
    }
    config = load_config(root / "cluster", ports, environ)
    rows: list[tuple[str, float]] = []
    before = used_memory()
    sampler = PeakMemory()
    sampler.start()
    quiet = lambda line: None  # noqa: E731
    try:
        started = time.monotonic()
        up(config, log=quiet)
        rows.append(("node up (binaries cached)", time.monotonic() - started))
        started = time.monotonic()
        built = build_images(list(IMAGES), log=quiet)
        rows.append(("images built or found", time.monotonic() - started))
        started = time.monotonic()
        import_into_node(built, config, log=quiet)
        rows.append(("images imported", time.monotonic() - started))
        rendered = render("node", filled_copy(root / "kubernetes"))
        started = time.monotonic()
        kubectl(config, "apply", "--server-side", "-f", "-", input=rendered, timeout=120)
        while not settled(config):
            time.sleep(2)
        rows.append((f"apply until ready ({len(objects(rendered))} objects)", time.monotonic() - started))
        package = root / "churn.yaml"
        subprocess.run([LAKEHOUSE, "compile", "--profile", "cluster", "--output", str(package)], check=True)
        ip = kubectl(
            config, "-n", "lakehouse", "get", "svc", "ml-pipeline", "-o", "jsonpath={.spec.clusterIP}"
        )
        started = time.monotonic()
        submit = [
            LAKEHOUSE,
            "submit",
            "--host",
            f"http://{ip.stdout.strip()}:8888",
            "--package",
            str(package),
        ]
        done = subprocess.run([*submit, "--wait", str(args.timeout)], capture_output=True, text=True)
        rows.append(("KFP run of pods, submit to end", time.monotonic() - started))
        print(done.stdout.strip())
        steps = step_times(config)
        peak = sampler.stop()
        if done.returncode:
            print(f"the run did not succeed:\n{done.stderr}", file=sys.stderr)
            return 1
    finally:
        try:
            if sampler.is_alive():
                sampler.stop()
        finally:
            down(config, wipe=True, log=quiet)
    local_home = root / "local"
    started = time.monotonic()
    local = subprocess.run(
        [LAKEHOUSE, "run"],
        env={**os.environ, "LAKEHOUSE_HOME": str(local_home), "LAKEHOUSE_DATA_DIR": str(REPO / "data")},
        capture_output=True,
        text=True,
    )
    rows.append(("kfp.local run (profile local), same data", time.monotonic() - started))
    if local.returncode:
        print(f"`lakehouse run` failed:\n{local.stderr[-2000:]}", file=sys.stderr)
        return 1

    print(f"\n{'what':<44} {'seconds':>8}")
    for what, seconds in rows:
        print(f"{what:<44} {seconds:8.1f}")
    print(f"\n{'step (KFP run of pods)':<24} {'step ran s':>10} {'driver to end s':>16}")
    for task, ran, total in steps:
        print(f"{task:<24} {ran:10.1f} {total:16.1f}")
    gib = 1 << 30
    print(
        f"\nmemory in use: {before / gib:.2f} GiB before the node, peak {peak / gib:.2f} GiB "
        f"(+{(peak - before) / gib:.2f} GiB) with the platform running; load average {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
