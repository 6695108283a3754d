"""Integration test: the real model server in a child process, answering V1 and V2 requests over HTTP."""

from __future__ import annotations

import httpx
import pytest

from components.core.serving_client import READY_PATH
from components.core.settings import SERVED_MODEL_NAME

V1 = f"/v1/models/{SERVED_MODEL_NAME}:predict"
V2 = f"/v2/models/{SERVED_MODEL_NAME}/infer"
UNKNOWN = 999


@pytest.fixture(scope="module")
def client(served):
    """One connection (max_connections=1) to the served model's REST endpoints."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=served[0], limits=limits, timeout=30) as http:
        yield http


def test_server_is_ready_and_describes_the_model(client):
    assert client.get(READY_PATH).status_code == 200
    assert client.get(f"/v1/models/{SERVED_MODEL_NAME}").json() == {"name": SERVED_MODEL_NAME, "ready": True}


def test_v1_predicts_known_and_unknown_customers(client, served_lakehouse):
    response = client.post(V1, json={"instances": [{"customer_id": 2}, UNKNOWN]})
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == str(served_lakehouse.champion_version)
    known, unknown = body["predictions"]
    assert known["customer_id"] == 2 and known["known"] is True and 0.0 < known["churn_probability"] < 1.0
    assert unknown == {"customer_id": UNKNOWN, "churn_probability": None, "known": False}


def test_v2_predicts_with_nan_as_json_null_for_unknown_customers(client):
    request = {
        "id": "q-7",
        "inputs": [{"name": "customer_id", "shape": [2], "datatype": "INT64", "data": [3, UNKNOWN]}],
    }
    response = client.post(V2, json=request)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "q-7" and body["model_name"] == SERVED_MODEL_NAME
    outputs = {output["name"]: output for output in body["outputs"]}
    probability, unknown = outputs["churn_probability"]["data"]
    assert outputs["churn_probability"]["datatype"] == "FP64" and 0.0 < probability < 1.0
    assert unknown is None  # NaN has no JSON form
    assert outputs["known"]["data"] == [True, False]


def test_v1_and_v2_agree(client):
    v1 = client.post(V1, json={"instances": [1]}).json()["predictions"][0]["churn_probability"]
    request = {"inputs": [{"name": "customer_id", "shape": [1], "datatype": "INT64", "data": [1]}]}
    v2 = client.post(V2, json=request).json()["outputs"][0]["data"][0]
    assert v1 == pytest.approx(v2, rel=1e-12)


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (V1, {"instances": ["x"]}, "must be an integer customer id"),
        (V1, {"rows": [1]}, '"instances" list'),
        (V2, {"inputs": [{"name": "id", "shape": [1], "datatype": "INT64", "data": [1]}]}, "'customer_id'"),
        (V2, {"inputs": [{"name": "customer_id", "shape": [1], "datatype": "FP32", "data": [1.5]}]}, "INT64"),
    ],
)
def test_malformed_request_is_a_400_and_the_connection_stays_usable(client, path, body, message):
    bad = client.post(path, json=body)
    assert bad.status_code == 400
    assert message in bad.json()["error"]
    assert "close" not in bad.headers.get("connection", "")
    good = client.post(V1, json={"instances": [1]})  # same single connection
    assert good.status_code == 200 and good.json()["predictions"][0]["known"] is True


def test_batch_scores_equal_the_served_ones(client, served_lakehouse):
    from components.core.catalog import read_table
    from components.scoring.score import CHURN_SCORES, score_customers

    result = score_customers(served_lakehouse.settings)
    assert result.model_version == served_lakehouse.champion_version
    batch = read_table(CHURN_SCORES, served_lakehouse.settings).to_pandas().sort_values("customer_id")
    ids = batch["customer_id"].tolist()
    assert ids == [1, 2, 3]
    served = client.post(V1, json={"instances": ids}).json()["predictions"]
    assert [p["customer_id"] for p in served] == ids and all(p["known"] for p in served)
    for stored, answer in zip(batch["churn_probability"], served, strict=True):
        assert answer["churn_probability"] == pytest.approx(stored, rel=0, abs=1e-12)


def test_two_workers_answer_concurrent_requests_as_one_does(client, served_lakehouse):
    from concurrent.futures import ThreadPoolExecutor

    from components.core.ports import free_port
    from components.core.serving_client import start_in_background

    ids = [1, 2, 3, UNKNOWN]
    expected = client.post(V1, json={"instances": ids}).json()
    settings = served_lakehouse.settings
    with start_in_background(settings, host="127.0.0.1", port=free_port(), workers=2) as server:

        def ask(_: int) -> dict:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                return [http.post(V1, json={"instances": ids}).json() for _ in range(10)]

        with ThreadPoolExecutor(8) as pool:
            answers = [answer for batch in pool.map(ask, range(8)) for answer in batch]
        log = server.log_path.read_text()
    assert answers == [expected] * 80
    assert log.count("Started server process") == 2 and "Traceback" not in log
