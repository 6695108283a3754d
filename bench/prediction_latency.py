"""Benchmark: online prediction latency over HTTP on loopback: `python -m bench.prediction_latency`."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from components.core.settings import Settings, get_settings


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    requests: int = 2000, port: int | None = None, warmup: int = 200, settings: Settings | None = None
) -> dict[str, dict[str, float]]:
    """Start the server, send single-customer V1 and V2 requests one at a time, return latency figures.

    Customers cycle through the ids of `gold.customer_features`, so each request reads the online store.

    Returns:
        Per protocol: p50, p90, p99 and max in ms, and the server's CPU ms per request.
    """
    import httpx

    from components.core.catalog import read_table
    from components.core.serving_client import V1_PATH, V2_PATH, start_in_background, v1_body, v2_body

    settings = settings or get_settings()
    ids = sorted(set(read_table("gold.customer_features", settings).column("customer_id").to_pylist()))
    bodies = {"V1": (V1_PATH, lambda c: v1_body([c])), "V2": (V2_PATH, lambda c: v2_body([c]))}
    figures = {}
    with start_in_background(settings, port=port) as server, httpx.Client(base_url=server.url) as client:
        for protocol, (path, body) in bodies.items():
            for i in range(warmup):
                client.post(path, json=body(ids[i % len(ids)])).raise_for_status()
            latencies = []
            cpu_before = _cpu_seconds(server.process.pid)
            for i in range(requests):
                started = time.perf_counter()
                client.post(path, json=body(ids[i % len(ids)])).raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)
            cpu_ms = (_cpu_seconds(server.process.pid) - cpu_before) * 1000 / requests
            figures[protocol] = {
                "p50_ms": _percentile(latencies, 0.5),
                "p90_ms": _percentile(latencies, 0.9),
                "p99_ms": _percentile(latencies, 0.99),
                "max_ms": max(latencies),
                "server_cpu_ms_per_request": cpu_ms,
            }
    return figures


def report(figures: dict[str, dict[str, float]], requests: int) -> None:
    """Print the figures of :func:`measure`, one line per protocol."""
    for protocol, values in figures.items():
        print(
            f"online prediction {protocol}: p50 {values['p50_ms']:.2f} ms, p90 {values['p90_ms']:.2f} ms, "
            f"p99 {values['p99_ms']:.2f} ms, max {values['max_ms']:.2f} ms, "
            f"server CPU {values['server_cpu_ms_per_request']:.2f} ms/request"
        )
    print(f"{requests} single-customer requests per protocol, feature lookup included")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.prediction_latency", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per protocol")
    parser.add_argument("--port", type=int, help="HTTP port (default: settings.serving_port)")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    report(measure(args.requests, args.port), args.requests)
    print(f"load average before: {load[0]:.2f}")


if __name__ == "__main__":
    main()
