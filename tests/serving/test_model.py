"""Tests of `ChurnModel`: load() and preprocess -> predict -> postprocess on a tiny real lakehouse."""

from __future__ import annotations

import asyncio
import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest, InferResponse

from components.core.feature_store import FEATURE_COLUMNS, get_store
from components.core.settings import FEATURE_SERVICE, SERVED_MODEL_NAME
from serving.model import ChurnModel, ModelLoadError
from serving.online_features import OnlineFeatureReader
from serving.protocol import MAX_CUSTOMERS
from testing.tiny_lakehouse import AS_OF_DATES, SIGNUP, feature_row

UNKNOWN = 999


@pytest.fixture(scope="module")
def model(served_lakehouse) -> ChurnModel:
    model = ChurnModel(served_lakehouse.settings)
    assert model.load() is True
    return model


def _call(model: ChurnModel, payload):
    response, _ = asyncio.run(model(payload))
    return response


def _expected_probability(served_lakehouse, customer_id: int) -> float:
    """The champion's own predict_proba on the customer's latest gold row."""
    row = feature_row(customer_id, len(AS_OF_DATES) - 1)
    frame = pd.DataFrame([{name: row[name] for name in FEATURE_COLUMNS}]).astype({"recency_days": float})
    pipeline = served_lakehouse.pipelines[served_lakehouse.champion_version]
    return float(pipeline.predict_proba(frame)[:, 1][0])


def _v2(data, name="customer_id", datatype="INT64", shape=None) -> InferRequest:
    shape = [len(data)] if shape is None else shape
    return InferRequest(SERVED_MODEL_NAME, [InferInput(name, shape, datatype, data)], request_id="r-1")


def test_load_serves_the_champion_not_the_latest_version(model, served_lakehouse):
    assert model.ready and model.name == SERVED_MODEL_NAME
    assert model.model_version == str(served_lakehouse.champion_version) == "1"
    assert model.scorer.uses_numpy_path
    assert model.scorer.kernel_steps == ["numeric", "tier", "classifier"]


def test_online_reader_returns_what_get_online_features_returns(model, served_lakehouse):
    ids = [*sorted(SIGNUP), UNKNOWN, 2]  # a customer asked twice gets the same row twice
    rows, known = model.features.read(ids)
    store = get_store(served_lakehouse.settings)
    reference = store.get_online_features(
        features=store.get_feature_service(FEATURE_SERVICE), entity_rows=[{"customer_id": i} for i in ids]
    ).to_dict()
    assert known == [True, True, True, False, True]
    for position, row in enumerate(rows):
        assert set(row) == set(FEATURE_COLUMNS)
        for name, value in row.items():
            assert value == reference[name][position], (ids[position], name)


def test_online_reader_needs_a_feature_service_keyed_by_its_join_key(served_lakehouse):
    with pytest.raises(ValueError, match="not keyed by 'order_id'"):
        OnlineFeatureReader(get_store(served_lakehouse.settings), FEATURE_SERVICE, join_key="order_id")


def test_v1_predictions_match_the_champion_on_the_latest_features(model, served_lakehouse):
    response = _call(model, {"instances": [{"customer_id": 1}, 2, {"customer_id": UNKNOWN}, 3]})
    assert response["model_version"] == "1"
    assert response["registered_model"] == served_lakehouse.settings.model_name
    assert response["feature_service"] == FEATURE_SERVICE
    predictions = response["predictions"]
    assert [p["customer_id"] for p in predictions] == [1, 2, UNKNOWN, 3]
    assert predictions[2] == {"customer_id": UNKNOWN, "churn_probability": None, "known": False}
    for prediction in (predictions[0], predictions[1], predictions[3]):
        assert prediction["known"] is True
        expected = _expected_probability(served_lakehouse, prediction["customer_id"])
        assert prediction["churn_probability"] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_v1_with_only_unknown_customers_skips_the_model(model):
    response = _call(model, {"instances": [UNKNOWN, UNKNOWN + 1]})
    assert [p["known"] for p in response["predictions"]] == [False, False]


def test_v2_returns_probability_known_and_customer_id(model, served_lakehouse):
    response = _call(model, _v2([2, UNKNOWN]))
    assert isinstance(response, InferResponse)
    assert response.id == "r-1" and response.model_version == "1"
    outputs = {output.name: output for output in response.outputs}
    assert (outputs["churn_probability"].datatype, outputs["known"].datatype) == ("FP64", "BOOL")
    assert outputs["churn_probability"].shape == [2]
    probability, unknown = outputs["churn_probability"].data
    assert probability == pytest.approx(_expected_probability(served_lakehouse, 2), rel=1e-9)
    assert math.isnan(unknown)
    assert outputs["known"].data == [True, False]
    assert outputs["customer_id"].data == [2, UNKNOWN]


def test_v2_accepts_numpy_data(model):
    response = _call(model, _v2(np.array([1, 3], dtype=np.int64)))
    assert {o.name: o.data for o in response.outputs}["known"] == [True, True]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, '"instances" list'),
        ([1, 2], '"instances" list'),
        ({"instances": 17}, '"instances" must be a list'),
        ({"instances": []}, "empty"),
        ({"instances": ["17"]}, r"instances\[0\] must be an integer"),
        ({"instances": [1, 2.5]}, r"instances\[1\] must be an integer"),
        ({"instances": [True]}, r"instances\[0\] must be an integer"),
        ({"instances": [{"id": 1}]}, r'instances\[0\] has no "customer_id"'),
        ({"instances": [{"customer_id": None}]}, r"instances\[0\].customer_id must be an integer"),
        ({"instances": [2**63]}, "INT64 range"),
        ({"instances": list(range(MAX_CUSTOMERS + 1))}, f"at most {MAX_CUSTOMERS}"),
        (_v2([1], name="id"), "exactly one input named 'customer_id'"),
        (_v2([1.0], datatype="FP64"), "datatype INT64, got FP64"),
        (_v2([1, 2], shape=[1, 2]), r"shape \[n\]"),
        (_v2([1], shape=[2]), "must carry 2 values"),
        (_v2([], shape=[0]), "empty"),
        (_v2(["x"]), r"customer_id\[0\] must be an integer"),
        (_v2(list(range(MAX_CUSTOMERS + 1))), f"at most {MAX_CUSTOMERS}"),
    ],
)
def test_malformed_requests_raise_invalid_input(model, payload, message):
    with pytest.raises(InvalidInput, match=message):
        _call(model, payload)


def test_v2_with_two_inputs_is_refused(model):
    request = _v2([1])
    request.inputs.append(InferInput("customer_id", [1], "INT64", [2]))
    with pytest.raises(InvalidInput, match="exactly one input"):
        _call(model, request)


def test_load_without_a_champion_names_the_alias(served_lakehouse):
    settings = dataclasses.replace(served_lakehouse.settings, model_name="no_such_model")
    with pytest.raises(ModelLoadError, match="'no_such_model'.*'champion'"):
        ChurnModel(settings).load()


def test_load_without_the_feature_service_asks_for_the_features_step(served_lakehouse, tmp_path):
    settings = dataclasses.replace(served_lakehouse.settings, feast_registry=str(tmp_path / "empty.db"))
    model = ChurnModel(settings)
    with pytest.raises(ModelLoadError, match="run the features step"):
        model.load()
    assert not model.ready


def test_a_forked_worker_reopens_the_store_and_serves_the_same_version(model):
    import copy

    worker = copy.copy(model)  # a forked process holds a copy of the loaded model
    worker.reopen()
    assert worker.model_version == model.model_version and worker.ready
    assert worker.features is not model.features and worker.scorer.uses_numpy_path
    ids = [*sorted(SIGNUP), UNKNOWN]
    assert _call(worker, {"instances": ids}) == _call(model, {"instances": ids})


def test_metadata_names_the_tensors_and_the_version(model, served_lakehouse):
    assert model.get_input_types() == [{"name": "customer_id", "datatype": "INT64", "shape": [-1]}]
    assert [t["name"] for t in model.get_output_types()] == ["churn_probability", "known", "customer_id"]
    assert model.versions == [str(served_lakehouse.champion_version)]
