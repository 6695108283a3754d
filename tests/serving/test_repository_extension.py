"""Nobody who reaches the serving ports can unload the model; readiness is false whenever it is not ready.

KServe serves the Open Inference Protocol's model repository extension (load, unload) on the same ports as
inference, to anyone: one `unload` turned every later prediction into a 404 while `/v2/health/ready` stayed
200, so the pod's readiness probe never noticed. The model server serves no repository extension, and its
readiness is the models' own.
"""

from __future__ import annotations

import asyncio

import grpc
import httpx
import pytest
from kserve.model_repository import ModelRepository
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

from components.core.settings import SERVED_MODEL_NAME
from serving.open_inference import VersionedDataPlane

V1_PREDICT = f"/v1/models/{SERVED_MODEL_NAME}:predict"
JSON = {"content-type": "application/json"}


def _predicts(rest: httpx.Client) -> None:
    answer = rest.post(V1_PREDICT, json={"instances": [1]}, headers=JSON)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["known"] is True


@pytest.mark.parametrize("action", ["unload", "load"])
def test_rest_repository_calls_are_not_served_and_the_model_keeps_answering(rest, action):
    path = f"/v2/repository/models/{SERVED_MODEL_NAME}/{action}"
    for variant in (path, path, f"{path}/", f"{path}?force=true"):  # twice: the model is still there after
        answer = rest.post(variant, headers=JSON)
        assert answer.status_code == 404, answer.text
        assert "repository extension is not served" in answer.json()["error"]
    assert rest.get(path).status_code == 404
    assert rest.post("/v2/repository/index", json={}, headers=JSON).status_code == 404
    _predicts(rest)
    assert rest.get("/v2/health/ready").status_code == 200
    assert rest.get(f"/v2/models/{SERVED_MODEL_NAME}/ready").json()["ready"] is True


def test_grpc_repository_calls_are_refused_and_the_model_keeps_answering(stub, rest):
    with pytest.raises(grpc.RpcError) as unload:
        stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name=SERVED_MODEL_NAME), timeout=10)
    assert unload.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "repository extension is not served" in unload.value.details()
    with pytest.raises(grpc.RpcError) as load:
        stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name=SERVED_MODEL_NAME), timeout=10)
    assert load.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready is True
    assert stub.ModelReady(pb.ModelReadyRequest(name=SERVED_MODEL_NAME), timeout=10).ready is True
    _predicts(rest)


def test_server_readiness_is_false_without_a_ready_model(served_lakehouse):
    """The data plane the server uses, over a real loaded model: ready only while every model is."""
    from serving.model_server import build_model

    model = build_model(served_lakehouse.settings)
    registry = ModelRepository()
    registry.update(model)
    plane = VersionedDataPlane(model_registry=registry)
    assert asyncio.run(plane.ready()) is True
    model.ready = False  # e.g. a load that has not finished
    assert asyncio.run(plane.ready()) is False
    model.ready = True
    registry.unload(SERVED_MODEL_NAME)  # what the repository extension's unload did
    assert asyncio.run(plane.ready()) is False
