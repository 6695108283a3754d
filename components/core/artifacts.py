"""A step's result as a KFP artifact: exact JSON in its file, displayable values in its metadata.

KFP keeps artifact metadata as protobuf `Struct` values, where every number is a double: an Iceberg
snapshot id (a 64-bit integer) would lose digits. So the exact result goes into the artifact's file as
JSON, and the metadata the KFP UI shows holds whole numbers as text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from components.core.results import StepResult

Result = TypeVar("Result", bound=StepResult)

#: Integers above this lose precision as a double.
_EXACT_INT = 2**53


def displayable(value: Any) -> Any:
    """`value` for KFP metadata: large integers, non-finite floats and other objects as text."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if abs(value) < _EXACT_INT else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): displayable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [displayable(v) for v in value]
    return str(value)


def write_result(artifact: Any, result: StepResult | Mapping[str, Any], shown: tuple[str, ...] = ()) -> None:
    """Write `result` as JSON to `artifact.path` and copy the fields `shown` into its metadata.

    Args:
        artifact: a KFP output artifact (its `path` is where KFP picks the file up).
        result: the step's result, exact (ids stay integers in the file).
        shown: the fields worth seeing in the KFP UI; their values are made displayable.
    """
    if isinstance(result, StepResult):
        result = result.to_dict()
    path = Path(artifact.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str), encoding="utf-8")
    show(artifact, result, shown)


def show(artifact: Any, result: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    """Copy the `keys` of `result` that it has into the artifact's metadata, made displayable.

    A key whose value is None is left out: KFP's launcher records metadata in ML Metadata, which has no null
    (a top-level null fails the step after it has run).
    """
    for key in keys:
        if result.get(key) is not None:
            artifact.metadata[key] = displayable(result[key])


def read_result(artifact: Any) -> dict[str, Any]:
    """The result an upstream step wrote with :func:`write_result`, as a dict."""
    return json.loads(Path(artifact.path).read_text(encoding="utf-8"))


def read_typed_result(artifact: Any, result_type: type[Result]) -> Result:
    """The result of type `result_type` an upstream step wrote with :func:`write_result`."""
    return result_type.from_dict(read_result(artifact))


def log_metrics(artifact: Any, values: Mapping[str, float | int | bool | None]) -> None:
    """`artifact.log_metric` for each value that is a finite number (booleans as 0/1); the rest skipped.

    The values are also written to the artifact's file as JSON, so a local run leaves them readable.
    """
    logged = {}
    for name, value in values.items():
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        artifact.log_metric(name, float(value))
        logged[name] = float(value)
    Path(artifact.path).parent.mkdir(parents=True, exist_ok=True)
    Path(artifact.path).write_text(json.dumps(logged, indent=2, sort_keys=True), encoding="utf-8")
