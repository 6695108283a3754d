"""The real model server (two forked workers, gRPC) under faults: malformed requests, a locked online store,
a champion promoted while it answers."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from testing.faults import V1, answers_while, v1_answer, wait_for_lines
from tests.serving.malformed import V2, CountingConnection, malformed_grpc_requests, malformed_requests

SEED = 20261129
MAX_BODY = 64 * 1024
SWITCHED = "now serves {model} version {version}"


@dataclass(frozen=True)
class Server:
    """The running server's process, REST base URL, log and gRPC address."""

    process: object
    url: str
    log_path: Path
    grpc_address: str


@pytest.fixture(scope="module")
def server(served_lakehouse) -> Server:
    """Two HTTP workers and gRPC, a 64 KiB body limit, the champion checked on SIGHUP only."""
    from components.core.ports import free_port
    from components.core.serving_client import start_in_background

    settings = served_lakehouse.settings.with_policy(
        champion_poll_seconds=0.0, serving_max_body_bytes=MAX_BODY
    )
    grpc_port = free_port()
    with start_in_background(
        settings, host="127.0.0.1", port=free_port(), grpc_port=grpc_port, workers=2
    ) as running:
        yield Server(running.process, running.url, running.log_path, f"127.0.0.1:{grpc_port}")


def test_1000_malformed_requests_get_4xx_on_one_kept_connection(server):
    host, port = server.url.removeprefix("http://").split(":")
    connection = CountingConnection(host, int(port), timeout=30)
    statuses: Counter = Counter()
    failures = []
    for request in malformed_requests(SEED, 1000, MAX_BODY):
        status, body, header = connection.send_request(request)
        statuses[status] += 1
        if not 400 <= status < 500 or "close" in header.lower() or not body.startswith(b'{"'):
            failures.append((request.kind, request.path, status, header, body[:120]))
    connection.close()
    assert failures == []
    assert sum(statuses.values()) == 1000 and not any(status >= 500 for status in statuses)
    assert connection.connects == 1, f"reconnected {connection.connects - 1} times"
    assert {400, 413, 415} <= set(statuses)
    with httpx.Client(base_url=server.url) as http:  # and good requests are still answered
        assert http.post(V1, json={"instances": [1]}).status_code == 200


def test_malformed_grpc_requests_are_invalid_argument_on_one_channel(server):
    codes: Counter = Counter()
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = GRPCInferenceServiceStub(channel)
        for request in malformed_grpc_requests(SEED, 300):
            with pytest.raises(grpc.RpcError) as refused:
                stub.ModelInfer(request, timeout=30)
            codes[refused.value.code()] += 1
        huge = pb.ModelInferRequest(model_name="churn", raw_input_contents=[bytes(MAX_BODY + 1)])
        with pytest.raises(grpc.RpcError) as too_big:
            stub.ModelInfer(huge, timeout=30)
        good = next(malformed_grpc_requests(SEED, 1))
        good.ClearField("inputs")
        good.ClearField("raw_input_contents")
        tensor = good.inputs.add(name="customer_id", datatype="INT64", shape=[1])
        tensor.contents.int64_contents.append(1)
        answered = stub.ModelInfer(good, timeout=30)
    assert codes == Counter({grpc.StatusCode.INVALID_ARGUMENT: 300})
    assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert answered.model_name == "churn"


def test_a_locked_online_store_is_503_and_answers_return_when_it_is_released(server, served_lakehouse):
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=server.url, limits=limits, timeout=30) as http:
        before = http.post(V1, json={"instances": [1, 2, 3]}).json()
        writer = sqlite3.connect(served_lakehouse.settings.feast_online_path, isolation_level=None)
        writer.execute("BEGIN EXCLUSIVE")  # what a materialization holds while it commits
        try:
            refused = [http.post(V1, json={"instances": [1]}) for _ in range(2)]
            with grpc.insecure_channel(server.grpc_address) as channel:
                request = pb.ModelInferRequest(model_name="churn")
                tensor = request.inputs.add(name="customer_id", datatype="INT64", shape=[1])
                tensor.contents.int64_contents.append(1)
                with pytest.raises(grpc.RpcError) as unavailable:
                    GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        after = http.post(V1, json={"instances": [1, 2, 3]})
    for response in refused:
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert "sqlite online store cannot be read now: database is locked" in response.json()["error"]
        assert "close" not in response.headers.get("connection", "")
    assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
    assert after.status_code == 200 and after.json() == before


def test_sighup_switches_every_worker_to_a_new_champion_with_no_failed_answer(server, served_lakehouse):
    from components.core.model.registry import CHAMPION, tracking_client

    settings = served_lakehouse.settings
    client = tracking_client(settings)
    log = server.log_path

    def promote(version: str) -> None:
        text = SWITCHED.format(model=settings.model_name, version=version)
        seen = log.read_text(errors="replace").count(text)
        client.set_registered_model_alias(settings.model_name, CHAMPION, version)
        os.kill(server.process.pid, signal.SIGHUP)
        wait_for_lines(log, text, seen + 2)  # the first process and the forked worker

    try:
        answers = answers_while(server.url, lambda: promote("2"))
        with httpx.Client(base_url=server.url, limits=httpx.Limits(max_keepalive_connections=0)) as fresh:
            afterwards = [
                v1_answer(fresh, [1], 0.0) for _ in range(40)
            ]  # a new connection each: both workers
    finally:
        promote(str(served_lakehouse.champion_version))
    statuses = Counter(answer.status for answer in answers)
    versions = Counter(answer.version for answer in answers)
    print(
        f"\nduring the switch: {len(answers)} answers, statuses {dict(statuses)}, versions {dict(versions)}"
    )
    assert statuses == Counter({200: len(answers)})
    assert versions["1"] > 0 and versions["2"] > 0 and set(versions) == {"1", "2"}
    assert {(answer.status, answer.version) for answer in afterwards} == {(200, "2")}
    assert "champion check of" not in log.read_text(errors="replace")


def test_binary_v2_requests_still_pass_the_guard(server):
    import json
    import struct

    tensor = {
        "name": "customer_id",
        "shape": [2],
        "datatype": "INT64",
        "parameters": {"binary_data_size": 16},
    }
    header = json.dumps({"inputs": [tensor]}).encode()
    length = {"inference-header-content-length": str(len(header))}
    body = header + struct.pack("<2q", 1, 2)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        binary = http.post(V2, content=body, headers={"content-type": "application/octet-stream", **length})
        as_json = http.post(V2, content=body, headers={"content-type": "application/json", **length})
        unlabelled = http.post(V2, content=body, headers=length)
        mislabeled = http.post(V2, content=body, headers={"content-type": "text/plain", **length})
    for answer in (binary, as_json, unlabelled):  # as KServe and Triton take it, whatever JSON type it says
        outputs = {output["name"]: output["data"] for output in answer.json()["outputs"]}
        assert (
            answer.status_code == 200
            and outputs["customer_id"] == [1, 2]
            and outputs["known"] == [True, True]
        )
    assert mislabeled.status_code == 400 and "application/octet-stream" in mislabeled.json()["error"]


def _binary(tensor: dict, payload: bytes, header_length: int | None = None) -> tuple[bytes, dict[str, str]]:
    import json

    header = json.dumps({"inputs": [tensor]}).encode()
    length = str(len(header) if header_length is None else header_length)
    return header + payload, {
        "inference-header-content-length": length,
        "content-type": "application/octet-stream",
    }


def test_client_errors_of_the_binary_extension_are_400s_naming_the_sizes(server):
    import struct

    tensor = {"name": "customer_id", "shape": [2], "datatype": "INT64"}
    cases = [
        (
            _binary({**tensor, "parameters": {"binary_data_size": 16}}, struct.pack("<q", 1) + b"\x01"),
            "9 bytes follow",
        ),
        (
            _binary({**tensor, "parameters": {"binary_data_size": -8}}, struct.pack("<2q", 1, 2)),
            "whole number",
        ),
        (_binary({**tensor, "parameters": {"binary_data_size": 8}}, struct.pack("<q", 1)), "takes 16 bytes"),
        (
            _binary({**tensor, "parameters": {"binary_data_size": 16}}, b"", header_length=10**6),
            "but the body has",
        ),
    ]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for (body, headers), expected in cases:
            answer = http.post(V2, content=body, headers=headers)
            assert answer.status_code == 400 and expected in answer.json()["error"], answer.text


def test_a_version_is_served_under_its_own_path_and_others_are_404(server, served_lakehouse):
    served = str(served_lakehouse.champion_version)
    body = {"inputs": [{"name": "customer_id", "shape": [1], "datatype": "INT64", "data": [1]}]}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post(f"/v2/models/churn/versions/{served}/infer", json=body)
        assert answer.status_code == 200 and answer.json()["model_version"] == served
        other = http.post("/v2/models/churn/versions/999/infer", json=body)
        assert other.status_code == 404 and f"it serves {served}" in other.json()["error"]
        assert http.post("/v2/models/other/versions/1/infer", json=body).status_code == 404
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = GRPCInferenceServiceStub(channel)
        for version, code in ((served, None), ("999", grpc.StatusCode.NOT_FOUND)):
            request = pb.ModelInferRequest(model_name="churn", model_version=version)
            request.inputs.add(
                name="customer_id", datatype="INT64", shape=[1]
            ).contents.int64_contents.append(1)
            if code is None:
                assert stub.ModelInfer(request, timeout=30).model_version == served
            else:
                with pytest.raises(grpc.RpcError) as failed:
                    stub.ModelInfer(request, timeout=30)
                assert failed.value.code() == code and "is not served here" in failed.value.details()


def test_error_bodies_never_echo_a_large_input(server):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        schema = http.post(V2, json={"inputs": "x" * 50_000})  # KServe's own validation error
        ours = http.post(V1, json={"instances": ["y" * 50_000]})
    assert schema.status_code == 422 and len(schema.content) < 2_000 and "cut" in schema.json()["error"]
    assert ours.status_code == 400 and len(ours.content) < 300 and "50002 characters" in ours.json()["error"]


def _raw(server, payload: bytes, wait: float = 30.0) -> bytes:
    """Send `payload` on a new connection and read until the server closes it (or `wait` passes)."""
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(payload)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_oversized_headers_are_refused_before_they_are_buffered(server):
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"POST {V1} HTTP/1.1\r\nhost: x\r\n".encode())
        try:
            for _ in range(64):  # up to 4 MiB of one header: refused after the first 64 KiB
                sock.sendall(b"x-filler: " + b"a" * 65_536 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431 ") and b"over the limit of 65536 bytes" in answer
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post(V1, json={"instances": [1]}).status_code == 200, "the server answers others"


def test_a_client_that_stalls_mid_headers_is_cut_off_while_others_are_served(server):
    import concurrent.futures
    import time

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        stalled = pool.submit(_raw, server, f"POST {V1} HTTP/1.1\r\nhost: x\r\ncontent-le".encode())
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert http.post(V1, json={"instances": [1]}).status_code == 200
        answer = stalled.result(timeout=60)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ") and b"headers did not arrive within 10 s" in answer
    assert 9 < waited < 20, waited
