"""Open Inference Protocol conformance, checked with the protocol's own definitions as KServe ships them.

REST: requests built and responses validated with KServe's V2 data models (`v2_datamodels`). gRPC: a client
from the generated `grpc_predict_v2` stubs. Both must give the same answers, and bad input is refused the
way each protocol says (HTTP 400, gRPC INVALID_ARGUMENT) with the connection still usable.
"""

from __future__ import annotations

import math
import struct

import grpc
import httpx
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.rest.v2_datamodels import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadataResponse,
    RequestInput,
)

from components.core.settings import SERVED_MODEL_NAME
from tests.serving.test_server import UNKNOWN

IDS = [1, 3, UNKNOWN]
OUTPUTS = [("churn_probability", "FP64"), ("known", "BOOL"), ("customer_id", "INT64")]


def _rest_infer(rest: httpx.Client, ids: list[int]) -> InferenceResponse:
    request = InferenceRequest(
        id="oip-1", inputs=[RequestInput(name="customer_id", shape=[len(ids)], datatype="INT64", data=ids)]
    )
    response = rest.post(
        f"/v2/models/{SERVED_MODEL_NAME}/infer",
        content=request.model_dump_json(exclude_none=True),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    return InferenceResponse.model_validate_json(response.content)


def _grpc_request(ids: list[int], raw: bool = False, datatype: str = "INT64") -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(name="customer_id", datatype=datatype, shape=[len(ids)])
    request = pb.ModelInferRequest(model_name=SERVED_MODEL_NAME, id="oip-2", inputs=[tensor])
    if raw:
        request.raw_input_contents.append(struct.pack(f"<{len(ids)}q", *ids))
    elif datatype == "INT64":
        request.inputs[0].contents.int64_contents.extend(ids)
    else:
        request.inputs[0].contents.fp32_contents.extend(float(i) for i in ids)
    return request


def _grpc_outputs(response: pb.ModelInferResponse) -> dict[str, list]:
    values = {}
    for index, output in enumerate(response.outputs):
        if response.raw_output_contents:
            raw = response.raw_output_contents[index]
            code = {"FP64": "d", "BOOL": "?", "INT64": "q"}[output.datatype]
            values[output.name] = list(struct.unpack(f"<{len(raw) // struct.calcsize(code)}{code}", raw))
        else:
            contents = output.contents
            values[output.name] = list(
                {
                    "FP64": contents.fp64_contents,
                    "BOOL": contents.bool_contents,
                    "INT64": contents.int64_contents,
                }[output.datatype]
            )
    return values


def test_rest_model_metadata_describes_inputs_outputs_versions_and_platform(rest, served_lakehouse):
    response = rest.get(f"/v2/models/{SERVED_MODEL_NAME}")
    assert response.status_code == 200
    metadata = ModelMetadataResponse.model_validate_json(response.content)
    assert metadata.name == SERVED_MODEL_NAME
    assert metadata.versions == [str(served_lakehouse.champion_version)]
    assert metadata.platform == "sklearn_mlflow"
    assert [(t.name, t.datatype, t.shape) for t in metadata.inputs] == [("customer_id", "INT64", [-1])]
    assert [(t.name, t.datatype, t.shape) for t in metadata.outputs] == [(n, d, [-1]) for n, d in OUTPUTS]


def test_grpc_answers_health_and_metadata_as_rest_does(stub, rest):
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name=SERVED_MODEL_NAME)).ready
    over_grpc = stub.ModelMetadata(pb.ModelMetadataRequest(name=SERVED_MODEL_NAME))
    over_rest = rest.get(f"/v2/models/{SERVED_MODEL_NAME}").json()
    assert over_grpc.name == over_rest["name"] and list(over_grpc.versions) == over_rest["versions"]
    assert over_grpc.platform == over_rest["platform"]
    for grpc_tensors, rest_tensors in (
        (over_grpc.inputs, over_rest["inputs"]),
        (over_grpc.outputs, over_rest["outputs"]),
    ):
        assert [(t.name, t.datatype, list(t.shape)) for t in grpc_tensors] == [
            (t["name"], t["datatype"], t["shape"]) for t in rest_tensors
        ]


@pytest.mark.parametrize("raw", [False, True], ids=["typed-contents", "raw-contents"])
def test_grpc_inference_gives_the_rest_answers(stub, rest, raw, served_lakehouse):
    over_rest = _rest_infer(rest, IDS)
    assert over_rest.model_version == str(served_lakehouse.champion_version)
    expected = {output.name: output.data for output in over_rest.outputs}
    assert [(o.name, o.datatype, o.shape) for o in over_rest.outputs] == [(n, d, [3]) for n, d in OUTPUTS]

    response = stub.ModelInfer(_grpc_request(IDS, raw=raw))
    assert bool(response.raw_output_contents) == raw, "raw inputs are answered raw, typed ones typed"
    assert response.model_name == SERVED_MODEL_NAME and response.id == "oip-2"
    assert response.model_version == over_rest.model_version
    got = _grpc_outputs(response)
    assert got["customer_id"] == IDS and got["known"] == [True, True, False] == expected["known"]
    assert got["churn_probability"][:2] == pytest.approx(expected["churn_probability"][:2], rel=0, abs=1e-15)
    assert expected["churn_probability"][2] is None and math.isnan(got["churn_probability"][2])


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (_grpc_request([1], datatype="FP32"), "must have datatype INT64"),
        (
            pb.ModelInferRequest(model_name=SERVED_MODEL_NAME, inputs=[]),
            "exactly one input named 'customer_id'",
        ),
        (_grpc_request([]), "is empty"),
    ],
    ids=["wrong-datatype", "no-input", "no-ids"],
)
def test_bad_grpc_requests_are_invalid_argument_and_the_channel_stays_usable(stub, request_, message):
    with pytest.raises(grpc.RpcError) as refused:
        stub.ModelInfer(request_)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in refused.value.details()
    assert _grpc_outputs(stub.ModelInfer(_grpc_request([1])))["known"] == [True]


def test_tritons_client_works_with_its_defaults_over_http_and_grpc(served, rest):
    """Triton's Python client, in an environment of its own: binary tensors over HTTP (sent without a
    content type), raw contents over gRPC, requested outputs, metadata, readiness, 400 / INVALID_ARGUMENT."""
    from testing.triton_client import ask

    http_url, grpc_address = served
    expected = {o.name: o.data for o in _rest_infer(rest, IDS).outputs}

    found = ask(http_url.removeprefix("http://"), grpc_address, IDS)

    assert found["http_ready"] == found["grpc_ready"] == [True, True, True]
    for metadata in (found["http_metadata"], found["grpc_metadata"]):
        assert metadata["name"] == SERVED_MODEL_NAME and metadata["platform"] == "sklearn_mlflow"
        assert [o["name"] for o in metadata["outputs"]] == [name for name, _ in OUTPUTS]
    for call, request_id in (("http_binary", "http-binary"), ("grpc", "grpc-raw")):
        got = found[call]
        assert got["id"] == request_id and got["customer_id"] == IDS, call
        assert got["known"] == expected["known"] == [True, True, False], call
        assert got["churn_probability"][:2] == pytest.approx(expected["churn_probability"][:2], abs=1e-15), (
            call
        )
        assert got["churn_probability"][2] != got["churn_probability"][2], (
            f"{call}: NaN for an unknown customer"
        )
    assert found["http_json_one_output"]["names"] == ["churn_probability"]
    assert found["grpc_one_output"] == {"names": ["known"], "known": [True, True, False]}
    assert found["http_wrong_datatype"]["status"] == "400"
    assert "must have datatype INT64" in found["http_wrong_datatype"]["message"]
    assert found["grpc_wrong_datatype"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert found["http_unknown_output"]["status"] == "400"
    assert "unknown output 'churn'" in found["http_unknown_output"]["message"]
