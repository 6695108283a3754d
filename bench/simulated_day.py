"""Benchmark: a day of online traffic replayed at a past as-of date, then its quality once labels are known.

`python -m bench.simulated_day` takes a trained state folder (after `make demo`), serves the champion with the
online store as it was on the latest as-of date whose 30-day churn window has closed (time moved back), sends
a day's single-customer V1, V2 and gRPC requests from several clients, stops the server, loads the prediction
log into `bronze.prediction_log` and measures `gold.model_performance` (time moved forward: the labels are
known). It prints the traffic, what the log and the quality step found, the realised ROC AUC recomputed here
from the champion and the labels for the customers asked (they must agree), and the holdout figure; then it
puts the online store back at the latest as-of date.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from pathlib import Path

from components.core.settings import Settings, get_settings
from testing.predictions import own_log


def _past_day(settings: Settings):
    """The latest as-of date with labels, and the customers with features and labels on it."""
    import pyarrow.compute as pc

    from components.core.catalog import read_table

    labels = read_table("gold.churn_labels", settings)
    day = pc.max(labels["as_of_ts"]).as_py()
    on_day = labels.filter(pc.equal(labels["as_of_ts"], day))
    return day, on_day.to_pandas()


def _traffic(
    url: str, grpc_address: str, customers: list[int], requests: int, clients: int
) -> dict[str, int]:
    """Send `requests` single-customer requests over V1, V2 and gRPC from `clients` threads."""
    import grpc
    import httpx
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    from components.core.serving_client import V1_PATH, V2_PATH, v1_body, v2_body

    sent = {"v1": 0, "v2-rest": 0, "v2-grpc": 0, "errors": 0}
    lock = threading.Lock()

    def client(seed: int, count: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=url, timeout=30) as http, grpc.insecure_channel(grpc_address) as channel:
            stub = GRPCInferenceServiceStub(channel)
            for index in range(count):
                customer = rng.choice(customers)
                protocol = ("v1", "v2-rest", "v2-grpc")[index % 3]
                try:
                    if protocol == "v1":
                        http.post(V1_PATH, json=v1_body([customer])).raise_for_status()
                    elif protocol == "v2-rest":
                        http.post(V2_PATH, json=v2_body([customer])).raise_for_status()
                    else:
                        request = pb.ModelInferRequest(model_name="churn")
                        tensor = request.inputs.add(name="customer_id", datatype="INT64", shape=[1])
                        tensor.contents.int64_contents.append(customer)
                        stub.ModelInfer(request, timeout=30)
                    key = protocol
                except Exception:  # noqa: BLE001 - counted and reported
                    key = "errors"
                with lock:
                    sent[key] += 1

    threads = [
        threading.Thread(target=client, args=(seed, requests // clients + (seed < requests % clients)))
        for seed in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


def main(argv: list[str] | None = None) -> None:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from components.core.catalog import read_table
    from components.core.model.pipeline import churn_probability
    from components.core.model.registry import load_champion
    from components.core.ports import free_port
    from components.core.serving_client import start_in_background
    from components.features.materialize import apply_and_materialize
    from components.ingestion.prediction_log import load_prediction_log
    from components.monitoring.performance import measure_performance

    parser = argparse.ArgumentParser(prog="python -m bench.simulated_day", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="requests of the day (default 3000)")
    parser.add_argument("--clients", type=int, default=4, help="clients sending at once (default 4)")
    args = parser.parse_args(argv)
    settings = get_settings()
    day, labelled = _past_day(settings)
    customers = sorted(labelled["customer_id"].astype(int).tolist())
    print(f"replaying {day:%Y-%m-%d}: {len(customers)} customers with features and a known outcome")
    apply_and_materialize(settings, as_of=day)
    try:
        with tempfile.TemporaryDirectory(prefix="simulated-day-", dir=settings.home) as folder:
            logged = own_log(settings, Path(folder))
            grpc_port = free_port()
            started = time.perf_counter()
            with start_in_background(logged, port=free_port(), grpc_port=grpc_port, workers=2) as server:
                ready = time.perf_counter()
                sent = _traffic(server.url, f"127.0.0.1:{grpc_port}", customers, args.requests, args.clients)
                seconds = time.perf_counter() - ready
            print(
                f"traffic: {sum(sent.values())} requests in {seconds:.1f} s ({sent}); server start "
                f"{ready - started:.1f} s"
            )
            loaded = load_prediction_log(logged)
            print(f"prediction log: {loaded.summary()}")
    finally:
        apply_and_materialize(settings)  # the online store back at the latest as-of date
    performance = measure_performance(settings)
    pipeline, version = load_champion(settings)
    online = [
        group
        for group in performance.groups
        if group["source"] == "online" and group["as_of_ts"][:10] == f"{day:%Y-%m-%d}"
    ]
    for group in online:
        print(
            f"gold.model_performance, online, {group['as_of_ts'][:10]}, version {group['model_version']} "
            f"({group['role']}): {group['predictions']} customers, {group['churned']} churned, ROC AUC "
            f"{group['roc_auc']:.4f} (holdout {group['holdout_roc_auc']:.4f}), PR AUC {group['pr_auc']:.4f}, "
            f"Brier {group['brier_score']:.4f}, calibration error {group['calibration_error']:.4f}"
        )
    log = read_table("bronze.prediction_log", settings).to_pandas()
    asked = set(log[(log["features_as_of"] == day) & log["known"]]["customer_id"].astype(int))
    features = read_table("gold.customer_features", settings).to_pandas()
    rows = features[(features["as_of_ts"] == day) & features["customer_id"].isin(asked)]
    truth = rows.merge(labelled, on=["customer_id", "as_of_ts"])
    direct = roc_auc_score(truth["is_churned"].astype(int), np.asarray(churn_probability(pipeline, truth)))
    print(f"ROC AUC recomputed from version {version} and the labels of the {len(truth)} asked: {direct:.4f}")
    print(f"degraded: {', '.join(performance.degraded) or 'none'}")


if __name__ == "__main__":
    main()
