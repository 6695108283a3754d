"""A step's result as a KFP artifact: the exact JSON file, and metadata ML Metadata can record."""

from __future__ import annotations

import json

from kfp import dsl

from components.core.artifacts import read_result, write_result


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
