"""Benchmark: the churn model server beside a bare KServe model, on this machine at the same moment.

Run against a trained state folder: `LAKEHOUSE_HOME=<home> .venv/bin/python -m bench.serving_comparison`.
Both servers get the same request shape (one INT64 `customer_id`) from the same client (`bench.load_client`),
in alternating rounds so both see the same background load, and the same `--workers` HTTP processes (default
2; the churn server answers gRPC as well, from its first process). The bare server (`bench.bare_server`) has
its features in memory; the churn server reads them from the online store and logs every answer into a
prediction log of its own (a temporary folder, removed after) when the profile's log is on (as on every
profile by default). Printed: one client's p50/p99 over V1, V2 and gRPC, then `--clients` concurrent clients
over `--load-requests` V1 requests: errors, throughput, p99, and the churn server's ratios to the bare one
beside their targets.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.load_client import LoadResult, run_load
from components.core.ports import free_port
from components.core.serving_client import V1_PATH, V2_PATH, v1_body, v2_body
from components.core.settings import REPO_ROOT, SERVED_MODEL_NAME, get_settings
from testing.predictions import own_log

ROUNDS = 10


@contextmanager
def bare_server(workers: int, timeout: float = 300.0) -> Iterator[str]:
    """`python -m bench.bare_server` with `workers` processes on a free loopback port until the block ends;
    yields its URL."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_server", "--port", str(port), "--workers", str(workers)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bare server did not start (exit code {process.poll()})")
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _bodies(ids: list[int]) -> dict[str, Callable[[int], bytes]]:
    def v1(index: int) -> bytes:
        return json.dumps(v1_body([ids[index % len(ids)]])).encode()

    def v2(index: int) -> bytes:
        return json.dumps(v2_body([ids[index % len(ids)]])).encode()

    return {"V1": v1, "V2": v2}


def _merge(results: list[LoadResult]) -> LoadResult:
    merged = LoadResult()
    for result in results:
        merged.latencies_ms += result.latencies_ms
        merged.errors += result.errors
        merged.seconds += result.seconds
    return merged


def alternate(
    urls: dict[str, str], path: str, body: Callable[[int], bytes], requests: int, clients: int
) -> dict:
    """`requests` per server, sent in `ROUNDS` alternating rounds; returns each server's merged result."""
    per_round = max(1, requests // ROUNDS)
    results: dict[str, list[LoadResult]] = {name: [] for name in urls}
    for _ in range(ROUNDS):
        for name, url in urls.items():
            results[name].append(run_load(url, path, body, per_round, clients))
    return {name: _merge(found) for name, found in results.items()}


def grpc_latency(address: str, ids: list[int], requests: int) -> LoadResult:
    """One gRPC client, one request at a time: ModelInfer with one INT64 `customer_id`."""
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    result = LoadResult()
    with grpc.insecure_channel(address) as channel:
        stub = GRPCInferenceServiceStub(channel)
        started_all = time.perf_counter()
        for index in range(requests):
            tensor = pb.ModelInferRequest.InferInputTensor(name="customer_id", datatype="INT64", shape=[1])
            tensor.contents.int64_contents.append(ids[index % len(ids)])
            started = time.perf_counter()
            stub.ModelInfer(pb.ModelInferRequest(model_name=SERVED_MODEL_NAME, inputs=[tensor]))
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
        result.seconds = time.perf_counter() - started_all
    return result


def _line(label: str, result: LoadResult) -> str:
    return (
        f"  {label:<28} p50 {result.percentile(0.5):6.2f} ms  p99 {result.percentile(0.99):6.2f} ms  "
        f"{result.throughput:7.1f} req/s  errors {result.errors}"
    )


def main(argv: list[str] | None = None) -> None:
    from components.core.catalog import read_table
    from components.core.serving_client import start_in_background

    parser = argparse.ArgumentParser(
        prog="python -m bench.serving_comparison", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--requests", type=int, default=2000, help="single-client requests per server and protocol"
    )
    parser.add_argument("--load-requests", type=int, default=10000, help="requests per server under load")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients under load")
    parser.add_argument("--workers", type=int, default=2, help="HTTP processes of each server")
    args = parser.parse_args(argv)

    settings = get_settings()
    folder = Path(tempfile.mkdtemp(prefix="serving-comparison-"))
    settings = own_log(settings, folder) if settings.prediction_log_spool else settings
    print(f"prediction log: {settings.prediction_log_spool or 'off'}")
    ids = sorted(set(read_table("gold.customer_features", settings).column("customer_id").to_pylist()))
    bodies = _bodies(ids)
    grpc_port = free_port()
    load_before = os.getloadavg()[0]
    with (
        bare_server(args.workers) as bare,
        start_in_background(settings, port=free_port(), grpc_port=grpc_port, workers=args.workers) as churn,
    ):
        urls = {"bare": bare, "churn": churn.url}
        alternate(urls, V1_PATH, bodies["V1"], 400, 4)  # warm both up
        print(
            f"one client, {args.requests} requests per server and protocol (load average {load_before:.1f}):"
        )
        single = {
            protocol: alternate(urls, path, bodies[protocol], args.requests, 1)
            for protocol, path in (("V1", V1_PATH), ("V2", V2_PATH))
        }
        for protocol, results in single.items():
            for name, result in results.items():
                print(_line(f"{name} {protocol}", result))
        grpc = grpc_latency(f"127.0.0.1:{grpc_port}", ids, args.requests)
        print(_line("churn gRPC", grpc))
        print(f"{args.clients} clients, {args.load_requests} V1 requests per server:")
        loaded = alternate(urls, V1_PATH, bodies["V1"], args.load_requests, args.clients)
        for name, result in loaded.items():
            print(_line(f"{name} ({args.workers} worker(s))", result))

    bare_1, churn_1 = single["V1"]["bare"], single["V1"]["churn"]
    bare_n, churn_n = loaded["bare"], loaded["churn"]
    print("churn / bare:")
    print(
        f"  one client V1: p50 x{churn_1.percentile(0.5) / bare_1.percentile(0.5):.2f} (target <= 1.15), "
        f"p99 x{churn_1.percentile(0.99) / bare_1.percentile(0.99):.2f} (target <= 1.25)"
    )
    print(
        f"  {args.clients} clients: throughput x{churn_n.throughput / bare_n.throughput:.2f} "
        f"(target >= 1.0), p99 x{churn_n.percentile(0.99) / bare_n.percentile(0.99):.2f}, "
        f"errors {churn_n.errors} (target 0)"
    )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
