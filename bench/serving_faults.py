"""The model server under faults: answers during champion switches, and a Redis online store stopped and back.

It builds the serving tests' tiny lakehouse (three customers, two registered versions) in a new folder,
materializes its features into a private Redis (the stack's Redis service alone, on a free port), starts the
model server with two forked HTTP workers on it, then:

- switches the champion `--switches` times (alias moved, SIGHUP) while three keep-alive clients and one
  opening a new connection per request keep asking: answers, failures, the time until both processes serve
  the new version, and the answer latency around the switch;
- stops Redis `--outages` times (SAVE, stop, 20 requests, start): the 503s' latency and the time from Redis
  answering PING again to the first 200.

    .venv/bin/python -m bench.serving_faults --switches 5 --outages 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from components.core.model.registry import CHAMPION, tracking_client
from components.core.ports import free_port
from components.core.serving_client import start_in_background
from components.features.materialize import apply_and_materialize, get_training_set
from testing.champion import register_versions
from testing.faults import V1, answers_while, on_redis, private_redis, wait_for_lines
from testing.stack import start_alone, stop_alone
from testing.tiny_lakehouse import local_lakehouse, write_gold_tables


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    p50, top = statistics.median(ordered), ordered[-1]
    return f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {top * 1000:.1f} ms"


def switches(server, settings, count: int) -> None:
    """Move the alias between versions 1 and 2 under load, `count` times, after a round with no switch."""
    answers = answers_while(server.url, lambda: time.sleep(1.0))
    statuses = dict(Counter(answer.status for answer in answers))
    print(f"no switch, 1.6 s: {len(answers)} answers {statuses}; latency {_ms([a.took for a in answers])}")
    client = tracking_client(settings)
    for number in range(1, count + 1):
        version = "2" if number % 2 else "1"
        text = f"now serves {settings.model_name} version {version}"
        seen = server.log_path.read_text(errors="replace").count(text)
        took: list[float] = []

        def promote(version: str = version, text: str = text, seen: int = seen, took: list = took) -> None:
            client.set_registered_model_alias(settings.model_name, CHAMPION, version)
            os.kill(server.process.pid, signal.SIGHUP)
            took.append(wait_for_lines(server.log_path, text, seen + 2))

        answers = answers_while(server.url, promote)
        statuses = dict(Counter(answer.status for answer in answers))
        versions = dict(Counter(answer.version for answer in answers))
        print(
            f"switch {number} to version {version}: both processes in {took[0]:.2f} s; {len(answers)} "
            f"answers {statuses}, versions {versions}; latency {_ms([answer.took for answer in answers])}"
        )


def outages(server, redis, count: int) -> None:
    """Stop and restart Redis `count` times, asking meanwhile and after."""
    import redis as redis_client

    with httpx.Client(base_url=server.url, timeout=30) as http:
        for number in range(1, count + 1):
            redis_client.Redis(port=redis.port).save()
            stop_alone(redis)
            refused = []
            for _ in range(20):
                sent = time.monotonic()
                status = http.post(V1, json={"instances": [1, 2, 3]}).status_code
                refused.append((status, time.monotonic() - sent))
            start_alone(redis)  # returns once Redis answers PING
            back = time.monotonic()
            while http.post(V1, json={"instances": [1, 2, 3]}).status_code != 200:
                time.sleep(0.001)
            statuses = dict(Counter(status for status, _ in refused))
            print(
                f"outage {number}: {statuses} while down ({_ms([took for _, took in refused])}); first 200 "
                f"{(time.monotonic() - back) * 1000:.1f} ms after Redis answered PING"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--switches", type=int, default=5)
    parser.add_argument("--outages", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="serving-faults-"))
    try:
        measure(root, args.switches, args.outages)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(root: Path, switch_count: int, outage_count: int) -> None:
    """Build the lakehouse under `root`, start Redis and the server, run the switches and the outages."""
    with local_lakehouse(root / "lakehouse") as settings, private_redis() as redis:
        write_gold_tables(settings)
        apply_and_materialize(settings)
        register_versions(settings, get_training_set(settings), versions=2, champion=1)
        on_store = on_redis(settings, redis, root / "feast-redis" / "registry.db")
        print(
            f"load average {os.getloadavg()[0]:.1f}; starting the server (2 HTTP workers, Redis online store)"
        )
        with start_in_background(on_store, host="127.0.0.1", port=free_port(), workers=2) as server:
            switches(server, settings, switch_count)
            outages(server, redis, outage_count)
        print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
