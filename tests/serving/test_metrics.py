"""`/metrics` of a real server with two worker processes and gRPC: one scrape counts every process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from components.core.ports import free_port
from components.core.serving_client import start_in_background, v1_body, v2_body
from testing.predictions import own_log
from tests.serving.conftest import ServedLakehouse

UNKNOWN = 999_999


def _samples(text: str) -> dict[tuple, float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_one_scrape_counts_every_worker_and_protocol(
    served_lakehouse: ServedLakehouse, tmp_path: Path
) -> None:
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    settings = own_log(served_lakehouse.settings, tmp_path)
    customer = int(served_lakehouse.training_set["customer_id"].iloc[0])
    grpc_port = free_port()
    with start_in_background(
        settings, host="127.0.0.1", port=free_port(), grpc_port=grpc_port, workers=2
    ) as server:
        url = f"{server.url}/v1/models/churn:predict"
        for index in range(20):  # a new connection each: the kernel spreads them over both workers
            ids = [customer, UNKNOWN] if index % 2 else [customer]
            assert httpx.post(url, json=v1_body(ids), timeout=30).status_code == 200
        for _ in range(2):
            assert httpx.post(url, json={"instances": ["x"]}, timeout=30).status_code == 400
        for _ in range(5):
            body = v2_body([customer])
            assert httpx.post(f"{server.url}/v2/models/churn/infer", json=body, timeout=30).status_code == 200
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = GRPCInferenceServiceStub(channel)
            for datatype in ("INT64", "INT64", "INT64", "FP32"):
                request = pb.ModelInferRequest(model_name="churn")
                tensor = request.inputs.add(name="customer_id", datatype=datatype, shape=[1])
                if datatype == "INT64":
                    tensor.contents.int64_contents.append(customer)
                    stub.ModelInfer(request, timeout=30)
                else:
                    tensor.contents.fp32_contents.append(1.0)
                    with pytest.raises(grpc.RpcError):
                        stub.ModelInfer(request, timeout=30)
        scrapes = [_samples(httpx.get(f"{server.url}/metrics", timeout=30).text) for _ in range(4)]

    requests = {
        (labels[0][1], labels[1][1]): value
        for (name, labels), value in scrapes[0].items()
        if name == "lakehouse_requests_total"
    }
    assert requests == {
        ("v1", "200"): 20,
        ("v1", "400"): 2,
        ("v2-rest", "200"): 5,
        ("v2-grpc", "OK"): 3,
        ("v2-grpc", "INVALID_ARGUMENT"): 1,
    }
    assert all(
        {k: v for k, v in scrape.items() if k[0] == "lakehouse_requests_total"}
        == {k: v for k, v in scrapes[0].items() if k[0] == "lakehouse_requests_total"}
        for scrape in scrapes
    ), "every scrape, whichever worker answers it, sums every process"
    first = scrapes[0]
    assert first[("lakehouse_request_seconds_count", (("protocol", "v1"),))] == 22
    assert first[("lakehouse_customers_total", (("known", "false"),))] == 10
    assert first[("lakehouse_customers_total", (("known", "true"),))] == 20 + 5 + 3
    assert first[("lakehouse_online_store_seconds_count", ())] == 28
    assert first[("lakehouse_model_version", (("role", "champion"),))] == served_lakehouse.champion_version
    assert any(name.startswith("request_predict_seconds") for name, _ in first), "KServe's own series too"


def test_a_killed_servers_metrics_folder_is_removed_by_the_next(tmp_path, monkeypatch) -> None:
    import os
    import subprocess
    import sys

    from serving import metrics

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f"lakehouse-metrics-{dead.stdout.strip()}-abc"
    stale.mkdir()
    live = tmp_path / f"lakehouse-metrics-{os.getppid()}-def"
    live.mkdir()
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    folder = metrics.use_shared_folder()
    assert (
        not stale.exists() and live.exists() and folder.name.startswith(f"lakehouse-metrics-{os.getpid()}-")
    )
    metrics.remove_shared_folder()
    assert not folder.exists()
