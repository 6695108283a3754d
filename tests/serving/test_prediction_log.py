"""The prediction log of a real model server: every answer of every worker and protocol, loaded once."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path

import pytest

from components.core.ports import free_port
from components.core.serving_client import start_in_background, v1_body, v2_body
from components.core.settings import Settings
from testing.predictions import own_log
from testing.tiny_lakehouse import AS_OF_DATES
from tests.serving.conftest import ServedLakehouse

UNKNOWN = 999_999


def _load(settings: Settings):
    from components.ingestion.prediction_log import load_prediction_log

    return load_prediction_log(settings)


def _logged(settings: Settings) -> list[dict]:
    from components.core.catalog import read_table

    return read_table("bronze.prediction_log", settings).to_pylist()


def test_every_answer_of_every_worker_and_protocol_is_logged_once(
    served_lakehouse: ServedLakehouse, tmp_path: Path
) -> None:
    import grpc
    import httpx
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    settings = own_log(served_lakehouse.settings, tmp_path)
    latest_as_of = max(AS_OF_DATES).replace(tzinfo=None)  # what the online store holds
    customers = sorted(served_lakehouse.training_set["customer_id"].unique().tolist())[:6]
    grpc_port = free_port()
    answers: dict[str, dict] = {}  # request id -> {customer: probability or None}, from the responses
    protocols: dict[str, str] = {}
    server = start_in_background(settings, host="127.0.0.1", port=free_port(), grpc_port=grpc_port, workers=2)
    with server, httpx.Client(base_url=server.url, timeout=30) as client:
        for index in range(40):  # new connections, so both workers answer some
            ids = (
                [customers[index % len(customers)], UNKNOWN]
                if index % 4 == 0
                else [customers[-1 - index % len(customers)]]
            )
            response = httpx.post(
                f"{server.url}/v1/models/churn:predict",
                json=v1_body(ids),
                headers={"x-request-id": f"v1-{index}"},
                timeout=30,
            ).json()
            answers[f"v1-{index}"] = {
                p["customer_id"]: p["churn_probability"] for p in response["predictions"]
            }
            protocols[f"v1-{index}"] = "v1"
        for index in range(10):
            body = v2_body(customers[:3]) | {"id": f"v2-{index}"}
            response = client.post("/v2/models/churn/infer", json=body).json()
            values = dict(zip(response["outputs"][2]["data"], response["outputs"][0]["data"], strict=True))
            answers[response["id"]] = values
            protocols[response["id"]] = "v2-rest"
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = GRPCInferenceServiceStub(channel)
            for index in range(5):
                request = pb.ModelInferRequest(model_name="churn", id=f"grpc-{index}")
                tensor = request.inputs.add(name="customer_id", datatype="INT64", shape=[2])
                tensor.contents.int64_contents.extend([customers[index % len(customers)], UNKNOWN])
                reply = stub.ModelInfer(request, timeout=30)
                answers[reply.id] = dict(
                    zip(
                        reply.outputs[2].contents.int64_contents,
                        reply.outputs[0].contents.fp64_contents,
                        strict=True,
                    )
                )
                protocols[reply.id] = "v2-grpc"
        assert server.stop() == 0  # SIGTERM: every process writes out and seals its segment

    spool = Path(settings.prediction_log_spool)
    assert not list(spool.glob("*.open")), "a clean stop leaves no open segment"
    sealed = sorted(Path(settings.prediction_log_uri).glob("*.jsonl"))
    assert len({path.name.split("-")[-2] for path in sealed}) >= 2, f"both workers logged: {sealed}"

    result = _load(settings)
    rows = _logged(settings)
    expected = sum(len(values) for values in answers.values())
    assert result.rows == len(rows) == expected
    assert not result.problems and not list(Path(settings.prediction_log_uri).glob("*.jsonl"))
    by_request: dict[str, dict] = {}
    for row in rows:
        by_request.setdefault(row["request_id"], {})[row["customer_id"]] = row
        assert row["model_name"] == settings.model_name
        assert row["model_version"] == str(served_lakehouse.champion_version)
        assert row["role"] == "champion" and row["latency_ms"] > 0
        assert row["protocol"] == protocols[row["request_id"]]
    assert by_request.keys() == answers.keys()
    for request, values in answers.items():
        for customer, probability in values.items():
            row = by_request[request][customer]
            if customer == UNKNOWN:
                assert not row["known"] and row["probability"] is None and row["features"] is None
                assert probability is None or math.isnan(probability)
            else:
                assert row["known"] and row["probability"] == pytest.approx(probability, rel=1e-12)
                assert row["features_as_of"] == latest_as_of
                features = json.loads(row["features"])
                assert set(features) == set(served_lakehouse.pipelines[1].feature_names_in_)

    again = _load(settings)
    assert again.rows == 0 and len(_logged(settings)) == expected, "a second load adds nothing"


def test_a_killed_server_loses_only_what_it_had_not_written_out(
    served_lakehouse: ServedLakehouse, tmp_path: Path
) -> None:
    import httpx

    settings = own_log(served_lakehouse.settings, tmp_path)
    customer = int(served_lakehouse.training_set["customer_id"].iloc[0])
    server = start_in_background(settings, host="127.0.0.1", port=free_port())
    with server:
        for index in range(20):
            httpx.post(
                f"{server.url}/v1/models/churn:predict",
                json=v1_body([customer]),
                headers={"x-request-id": f"kill-{index}"},
                timeout=30,
            ).raise_for_status()
        time.sleep(1.0)  # longer than the log's flush interval
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=30)
    assert list(Path(settings.prediction_log_spool).glob("*.open")), "the killed writer left its segment open"

    result = _load(settings)
    assert len(result.orphans_sealed) == 1 and result.segments == result.orphans_sealed
    loaded = [row["request_id"] for row in _logged(settings) if row["segment"] in result.segments]
    assert sorted(loaded) == sorted(f"kill-{i}" for i in range(20))


@pytest.fixture
def challenger_alias(served_lakehouse: ServedLakehouse):
    """Sets the `challenger` alias on a version for one test, then removes it."""
    import mlflow

    client = mlflow.MlflowClient(served_lakehouse.settings.mlflow_tracking_uri)
    name = served_lakehouse.settings.model_name
    yield lambda version: client.set_registered_model_alias(name, "challenger", str(version))
    client.delete_registered_model_alias(name, "challenger")


def _shadowing(settings: Settings, folder: Path) -> Settings:
    return own_log(settings, folder).with_policy(shadow_share=1.0)


def test_the_challenger_answers_beside_the_champion_off_the_request_path(
    served_lakehouse: ServedLakehouse, challenger_alias, tmp_path: Path
) -> None:
    import httpx
    import pandas as pd

    from components.core.feature_store import FEATURE_COLUMNS

    challenger_alias(2)
    settings = _shadowing(served_lakehouse.settings, tmp_path)
    customers = sorted(served_lakehouse.training_set["customer_id"].unique().tolist())
    with start_in_background(settings, host="127.0.0.1", port=free_port()) as server:
        for index in range(6):
            answer = httpx.post(
                f"{server.url}/v1/models/churn:predict",
                json=v1_body([customers[index % len(customers)], UNKNOWN]),
                headers={"x-request-id": f"shadow-{index}"},
                timeout=30,
            ).json()
            assert answer["model_version"] == "1", "the champion answers"
    _load(settings)
    rows = [row for row in _logged(settings) if row["request_id"].startswith("shadow-")]
    roles = {(row["request_id"], row["customer_id"], row["role"]) for row in rows}
    assert len(rows) == len(roles) == 6 * 2 * 2, "each customer answered once by each"
    challenger = [row for row in rows if row["role"] == "challenger" and row["known"]]
    assert {row["model_version"] for row in challenger} == {"2"}
    features = pd.DataFrame([json.loads(row["features"]) for row in challenger])[list(FEATURE_COLUMNS)]
    numeric = [name for name in FEATURE_COLUMNS if name != "loyalty_tier"]
    expected = served_lakehouse.pipelines[2].predict_proba(features.astype(dict.fromkeys(numeric, "float64")))
    assert [row["probability"] for row in challenger] == pytest.approx(expected[:, 1].tolist(), abs=1e-12)


def test_a_challenger_that_cannot_be_served_is_alerted_and_the_champion_answers(
    served_lakehouse: ServedLakehouse, challenger_alias, tmp_path: Path
) -> None:
    """A version that needs a feature the online store does not serve, as the challenger."""
    import httpx
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    settings = served_lakehouse.settings
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    frame = served_lakehouse.training_set[["orders_30d"]].astype("float64").assign(not_served=1.0)
    odd = LogisticRegression().fit(frame, served_lakehouse.training_set["is_churned"])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            odd, name="model", registered_model_name=settings.model_name, pip_requirements=["scikit-learn"]
        )
    challenger_alias(info.registered_model_version)
    settings = _shadowing(settings, tmp_path)
    alerts = Path(settings.alert_file)
    before = alerts.read_text().count("\n") if alerts.exists() else 0
    customer = int(served_lakehouse.training_set["customer_id"].iloc[0])
    with start_in_background(settings, host="127.0.0.1", port=free_port()) as server:
        answer = httpx.post(f"{server.url}/v1/models/churn:predict", json=v1_body([customer]), timeout=30)
    assert answer.status_code == 200 and answer.json()["predictions"][0]["known"]
    new = [json.loads(line) for line in alerts.read_text().splitlines()[before:]]
    assert [alert["kind"] for alert in new] == ["shadow_failed"]
    assert "not_served" in new[0]["summary"] and "cannot be served" in new[0]["summary"]
    _load(settings)
    assert {row["role"] for row in _logged(settings) if row["segment"]} >= {"champion"}


def test_request_ids_are_unique_per_process_and_a_forked_worker_draws_its_own() -> None:
    from serving.protocol import new_request_id

    ours = {new_request_id() for _ in range(1000)}
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a forked worker: its ids never repeat the parent's
        os.write(write, "\n".join(new_request_id() for _ in range(1000)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        theirs = set(pipe.read().split("\n"))
    assert len(ours) == len(theirs) == 1000 and not ours & theirs
    assert len({identifier.split("-")[0] for identifier in ours | theirs}) == 2, "one prefix per process"
