"""The ML Metadata server (`infrastructure/metadata/`) for real: the store of ml-metadata 1.17.1 on MariaDB
and on SQLite, asked over gRPC by ml-metadata's own client and by raw bytes, and over gRPC-Web."""

from __future__ import annotations

import base64
import json
import subprocess
import uuid

import grpc
import httpx
import pytest

from infrastructure.local.procs import wait_until
from testing.mariadb import MariaDB
from tests.metadata.conftest import REPO_ROOT, START_LINE, MetadataServer, kfp_environment, metadata_server

SERVICE = "ml_metadata.MetadataStoreService"
UNSERVED = ["GetParentContextsByContexts", "GetChildrenContextsByContexts", "GetLineageGraph"]


def call(server: MetadataServer, method: str, request: bytes = b"") -> tuple[grpc.StatusCode, bytes | str]:
    """One unary call with the request's bytes as given: (OK, response bytes) or (code, message)."""
    with grpc.insecure_channel(server.target) as channel:
        send = channel.unary_unary(f"/{SERVICE}/{method}")  # no (de)serializers: bytes both ways
        try:
            return grpc.StatusCode.OK, send(request, timeout=15)
        except grpc.RpcError as exc:
            return exc.code(), exc.details()


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (a string or a message) of fewer than 128 bytes."""
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def web_frame(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


def test_kfp_driver_and_launcher_calls(server: MetadataServer):
    run = f"run-{uuid.uuid4().hex[:8]}"
    first = server.kfp_client(run)
    assert first.returncode == 0, first.stderr[-3000:]
    second = server.kfp_client(f"{run}-again")
    assert second.returncode == 0, second.stderr[-3000:]
    seen = json.loads(first.stdout)
    features, model = f"s3://lakehouse/{run}/features", f"s3://lakehouse/{run}/model"
    shared = {"pipeline_context_reused": None, "pipeline_children": None, "pipeline_executions": None}
    assert seen | shared == {
        "pipeline_context_reused": None,
        "duplicate_run_context": "AlreadyExistsError",
        "types": {"artifact": True, "execution": True, "context": True},
        "run_context": "lakehouse",
        "run_parents": ["churn-training"],
        "pipeline_children": None,
        "run_executions": [[f"{run}-train", "COMPLETE", "train"]],
        "pipeline_executions": None,
        "run_artifacts": [features, model],
        "events": [["INPUT", "features", features], ["OUTPUT", "model", model]],
        "artifact_events": ["INPUT", "OUTPUT"],
        "model_by_type_and_name": model,
        "models_of_type": [f"{run}-model"],
        "execution_by_type_and_name": True,
        "by_uri": [f"{run}-features"],
        "contexts_of_model": [run],
        "contexts_of_execution": ["churn-training", run],
        "contexts_by_id": [run],
        "absent_context": None,
    }
    again = json.loads(second.stdout)
    assert again["pipeline_context_reused"] is True  # the second run found the pipeline's context
    assert {run, f"{run}-again"} <= set(again["pipeline_children"])
    assert {f"{run}-train", f"{run}-again-train"} <= set(again["pipeline_executions"])


@pytest.mark.parametrize("method", UNSERVED)
def test_calls_the_store_lacks_are_unimplemented(on_mariadb: MetadataServer, method: str):
    code, message = call(on_mariadb, method)
    assert code == grpc.StatusCode.UNIMPLEMENTED
    assert f"{method} is not served" in message and "ml-metadata 1.17.1" in message


def test_bad_requests_are_invalid_argument_and_the_server_goes_on(on_mariadb: MetadataServer):
    assert call(on_mariadb, "PutArtifactType", b"\xff\xff\xff") == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Could not parse proto",
    )
    # well formed, refused by the store: an artifact type without a name
    assert call(on_mariadb, "PutArtifactType", b"") == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "No type name is specified.",
    )
    code, message = call(on_mariadb, "NoSuchMethod")
    assert code == grpc.StatusCode.UNIMPLEMENTED, message
    assert call(on_mariadb, "GetArtifactTypes")[0] == grpc.StatusCode.OK
    assert on_mariadb.alive()


def test_grpc_web_answers_as_grpc_does(on_mariadb: MetadataServer):
    name = f"web-{uuid.uuid4().hex[:8]}".encode()
    code, _ = call(on_mariadb, "PutContextType", field(1, field(2, name)))  # context_type { name }
    assert code == grpc.StatusCode.OK
    request = field(1, name)  # GetContextTypeRequest { type_name }
    code, expected = call(on_mariadb, "GetContextType", request)
    assert code == grpc.StatusCode.OK and name in expected
    url = f"{on_mariadb.web}/{SERVICE}/GetContextType"
    trailer = b"\x80" + len(b"grpc-status:0\r\ngrpc-message:\r\n").to_bytes(4, "big")
    trailer += b"grpc-status:0\r\ngrpc-message:\r\n"
    for kind, encode, decode in (
        ("application/grpc-web+proto", bytes, bytes),
        ("application/grpc-web-text", base64.b64encode, base64.b64decode),
    ):
        headers = {"Content-Type": kind, "X-Grpc-Web": "1", "Origin": "http://ui.example"}
        answer = httpx.post(url, content=encode(web_frame(request)), headers=headers, timeout=15)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith(kind.removesuffix("+proto"))
        assert answer.headers["access-control-allow-origin"] == "http://ui.example"
        assert "grpc-status" in answer.headers["access-control-expose-headers"]
        assert decode(answer.content) == web_frame(expected) + trailer


def test_grpc_web_errors_and_cors_preflight(on_mariadb: MetadataServer):
    preflight = httpx.options(
        f"{on_mariadb.web}/{SERVICE}/GetArtifactTypes",
        headers={
            "Origin": "http://ui.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-grpc-web,x-user-agent",
        },
        timeout=15,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://ui.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "x-grpc-web" in preflight.headers["access-control-allow-headers"]

    def web(method: str, body: bytes) -> httpx.Response:
        headers = {"Content-Type": "application/grpc-web+proto"}
        return httpx.post(f"{on_mariadb.web}/{SERVICE}/{method}", content=body, headers=headers, timeout=15)

    unserved = web("GetLineageGraph", web_frame(b""))
    assert (unserved.status_code, unserved.headers["grpc-status"]) == (200, "12")
    assert "GetLineageGraph is not served" in unserved.headers["grpc-message"]
    refused = web("PutArtifactType", web_frame(b""))
    assert refused.headers["grpc-status"] == "3"
    assert refused.headers["grpc-message"] == "No type name is specified."
    truncated = web("GetArtifactTypes", web_frame(b"\x0a\x05abc")[:-1] + b"\x00\x00")
    assert truncated.headers["grpc-status"] == "3", truncated.headers
    assert "the frame says" in truncated.headers["grpc-message"]
    assert web("GetArtifactTypes", web_frame(b"")).headers.get("grpc-status") is None  # OK: in the body


def test_server_outlives_its_database(on_mariadb: MetadataServer, mariadb: MariaDB):
    name = f"kept-{uuid.uuid4().hex[:8]}".encode()
    assert call(on_mariadb, "PutContextType", field(1, field(2, name)))[0] == grpc.StatusCode.OK
    mariadb.stop()
    try:
        for _ in range(2):  # the connection it held, then a new one, both refused
            code, message = call(on_mariadb, "GetContextType", field(1, name))
            assert code == grpc.StatusCode.UNAVAILABLE, message
            assert f"127.0.0.1:{mariadb.port}/metadb" in message
        assert "nothing answers" in message
        assert on_mariadb.alive()
    finally:
        mariadb.start()
    answers: list = []

    def answered() -> bool:
        answers.append(call(on_mariadb, "GetContextType", field(1, name)))
        return answers[-1][0] == grpc.StatusCode.OK

    assert wait_until(answered, 30, on_mariadb.alive, interval=0.2), answers[-3:]
    assert name in answers[-1][1]  # what it held before the database went away
    assert {code for code, _ in answers} <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}


def test_start_names_its_database_and_a_refused_login(server_python, mariadb: MariaDB, scratch):
    wrong = kfp_environment(mariadb, "otherdb") | {"DBCONFIG_PASSWORD": "not-the-password"}
    # what Kubernetes sets MYSQL_PORT to when a Service is named `mysql` and the manifest does not
    wrong["MYSQL_PORT"] = f"tcp://10.96.0.9:{mariadb.port}"
    with metadata_server(server_python, scratch, env=wrong) as server:
        line = next(line for line in server.log.read_text().splitlines() if START_LINE in line)
        assert f"database mysql://kfp@127.0.0.1:{mariadb.port}/otherdb (not answering yet" in line
        code, message = call(server, "GetArtifactTypes")
        assert code == grpc.StatusCode.UNAVAILABLE
        assert "the server answers: check the user, the password" in message
        assert server.alive()
    for args, says in (
        ([], "no database: set MYSQL_HOST"),
        (["--mysql_config_host=db", "--mysql_config_database=meta;db"], "use letters, digits"),
    ):
        command = [str(server_python), "-m", "infrastructure.metadata", *args]
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, check=False)
        assert (done.returncode, says in done.stderr) == (2, True), done.stderr
