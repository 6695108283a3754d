"""A step's result as a KFP artifact: the exact JSON file, and metadata ML Metadata can record."""

from __future__ import annotations

import json

import pytest
from kfp import dsl

from components.core.artifacts import read_result, read_typed_result, write_result
from components.core.results import Evaluation, Promotion


def test_metadata_leaves_out_none_and_keeps_large_numbers_exact_in_the_file(tmp_path):
    artifact = dsl.Dataset(name="bronze", uri="minio://lakehouse/x", metadata={})
    artifact.path = str(tmp_path / "bronze")  # where the launcher would put it
    result = {
        "rows": 3,
        "snapshot": 2**60,
        "watermark": None,
        "nested": {"missing": None},
        "rate": float("nan"),
    }
    write_result(artifact, result, shown=("rows", "snapshot", "watermark", "nested", "rate", "absent"))
    assert artifact.metadata == {
        "rows": 3,
        "snapshot": str(2**60),
        "nested": {"missing": None},
        "rate": "nan",
    }
    assert read_result(artifact)["snapshot"] == 2**60
    assert json.loads((tmp_path / "bronze").read_text())["watermark"] is None


def _evaluation(**changes) -> Evaluation:
    fields = {
        "model_version": 4,
        "decision": Promotion.KEPT_CHAMPION,
        "promoted": False,
        "reason": "roc_auc 0.8128 against champion version 3's 0.8123: gain +0.0005, less than the margin",
        "champion_version": 3,
        "model_uri": "models:/churn/3",
        "previous_champion_version": 3,
        "promotion_metric": "roc_auc",
        "candidate_roc_auc": 0.8128,
        "champion_roc_auc": 0.8123,
        "roc_auc_gain": 0.0005,
        "min_margin": 0.001,
        "candidate_metrics": {"roc_auc": 0.8128},
        "champion_metrics": {"roc_auc": 0.8123},
        "holdout": {"holdout_start": "2024-05-01"},
        "holdout_rows": 120,
        "champion_trained_on_window": False,
    }
    return Evaluation(**{**fields, **changes})


def test_a_typed_result_goes_through_its_artifact_field_by_field(tmp_path):
    artifact = dsl.Model(name="champion", uri="minio://lakehouse/x", metadata={})
    artifact.path = str(tmp_path / "champion")
    evaluation = _evaluation()
    write_result(artifact, evaluation, shown=("decision", "champion_version", "champion_metrics"))
    stored = json.loads((tmp_path / "champion").read_text())
    assert stored["decision"] == "kept_champion"  # the enum's value, as KFP and MLflow show it
    assert artifact.metadata == {
        "decision": "kept_champion",
        "champion_version": 3,
        "champion_metrics": {"roc_auc": 0.8123},
    }
    back = read_typed_result(artifact, Evaluation)
    assert back == evaluation and back.decision is Promotion.KEPT_CHAMPION


def test_a_result_of_another_shape_is_refused_naming_the_fields():
    data = _evaluation().to_dict()
    del data["reason"]
    data["verdict"] = "kept"
    with pytest.raises(
        ValueError, match=r"not the fields of Evaluation: missing \[.reason.\], unknown \[.verdict.\]"
    ):
        Evaluation.from_dict(data)
    with pytest.raises(ValueError, match="'maybe' is not a valid Promotion"):
        Evaluation.from_dict({**_evaluation().to_dict(), "decision": "maybe"})


def test_only_a_decision_that_leaves_the_candidate_out_keeps_the_champion():
    assert [p for p in Promotion if not p.candidate_is_champion] == [Promotion.KEPT_CHAMPION]
