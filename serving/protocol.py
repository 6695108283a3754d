"""The churn model's wire formats: customer ids out of V1/V2 requests, churn scores into V1/V2 responses."""

from __future__ import annotations

import itertools
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

MAX_CUSTOMERS = 1000
V2_INPUT = "customer_id"
V2_INPUT_DATATYPE = "INT64"
#: Output tensors of a V2 response, in order: name and datatype, each of shape [n].
V2_OUTPUTS = (("churn_probability", "FP64"), ("known", "BOOL"), ("customer_id", "INT64"))
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class ScoringRequest:
    """Customer ids to score, with the V2 request they came from (None for V1)."""

    customer_ids: list[int]
    v2_request: InferRequest | None = None
    #: When it was parsed (`time.perf_counter()`), for the latency the prediction log records.
    received: float = field(default_factory=time.perf_counter, compare=False)

    @property
    def protocol(self) -> str:
        """`v1`, `v2-rest` or `v2-grpc`: what the request came as."""
        if self.v2_request is None:
            return "v1"
        return "v2-grpc" if self.v2_request.from_grpc else "v2-rest"


@dataclass(frozen=True)
class ChurnScores:
    """Churn probability (NaN when unknown) and known flag per customer id, in request order."""

    request: ScoringRequest
    probabilities: list[float]
    known: list[bool]
    #: The registry version that scored them.
    model_version: str | None = None
    #: The feature values each customer was scored on (empty for an unknown one).
    rows: list[dict[str, Any]] | None = None
    #: The event time of each customer's feature rows: the as-of date they describe (None when unknown).
    as_of: list[Any] | None = None


def shown(value: Any, limit: int = 80) -> str:
    """`repr(value)` cut to `limit` characters: a message never echoes a whole oversized input."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _checked_count(count: int, where: str) -> None:
    if count == 0:
        raise InvalidInput(f"{where} is empty: send at least one customer id")
    if count > MAX_CUSTOMERS:
        raise InvalidInput(f"{where} has {count} customer ids; at most {MAX_CUSTOMERS} per request")


def _customer_id(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{where} must be an integer customer id, got {shown(value)}")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise InvalidInput(f"{where} is out of the INT64 range: {value}")
    return value


def parse_v1(payload: Any) -> ScoringRequest:
    """`{"instances": [{"customer_id": 17}, ...]}` or `{"instances": [17, ...]}` -> customer ids."""
    if not isinstance(payload, dict) or "instances" not in payload:
        raise InvalidInput('expected a JSON object with an "instances" list of customer ids')
    unknown = sorted(set(payload) - {"instances"})
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise InvalidInput(f'unknown field(s) {names}: a V1 request has "instances" only')
    instances = payload["instances"]
    if not isinstance(instances, list):
        raise InvalidInput(f'"instances" must be a list, got {type(instances).__name__}')
    _checked_count(len(instances), '"instances"')
    ids = []
    for index, instance in enumerate(instances):
        if isinstance(instance, dict):
            if "customer_id" not in instance:
                raise InvalidInput(f'instances[{index}] has no "customer_id"')
            if len(instance) > 1:
                others = ", ".join(repr(key) for key in instance if key != "customer_id")
                raise InvalidInput(f'instances[{index}] has unknown field(s) {others}: only "customer_id"')
            instance = instance["customer_id"]
            ids.append(_customer_id(instance, f"instances[{index}].customer_id"))
        else:
            ids.append(_customer_id(instance, f"instances[{index}]"))
    return ScoringRequest(customer_ids=ids)


def parse_v2(request: InferRequest) -> ScoringRequest:
    """An Open Inference Protocol request with one INT64 input `customer_id` of shape [n] -> customer ids."""
    names = [infer_input.name for infer_input in request.inputs]
    if names != [V2_INPUT]:
        raise InvalidInput(f"expected exactly one input named {V2_INPUT!r}, got {shown(names)}")
    infer_input = request.inputs[0]
    if infer_input.datatype != V2_INPUT_DATATYPE:
        raise InvalidInput(
            f"input {V2_INPUT!r} must have datatype {V2_INPUT_DATATYPE}, got {str(infer_input.datatype)[:40]}"
        )
    shape = list(infer_input.shape)
    if len(shape) != 1:
        raise InvalidInput(f"input {V2_INPUT!r} must have shape [n], got {shape}")
    _checked_count(shape[0], f"input {V2_INPUT!r}")
    data = infer_input.data
    if data is None or (isinstance(data, list) and not data):
        data = _binary_values(infer_input, shape)
    if hasattr(data, "tolist"):
        data = data.tolist()
    if not isinstance(data, list) or len(data) != shape[0]:
        raise InvalidInput(f"input {V2_INPUT!r} must carry {shape[0]} values to match its shape {shape}")
    ids = [_customer_id(value, f"{V2_INPUT}[{index}]") for index, value in enumerate(data)]
    known = [name for name, _ in V2_OUTPUTS]
    for requested in request.request_outputs or []:
        if requested.name not in known:
            raise InvalidInput(f"unknown output {shown(requested.name)}: the outputs are {', '.join(known)}")
    return ScoringRequest(customer_ids=ids, v2_request=request)


def _binary_values(infer_input: Any, shape: list[int]) -> list:
    """The values of an input that came as bytes (gRPC `raw_input_contents`, REST binary data), as INT64."""
    try:
        return infer_input.as_numpy().tolist()
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"input {V2_INPUT!r} must carry {shape[0]} INT64 values to match its shape {shape}: {exc}"
        ) from exc


def parse(payload: Any) -> ScoringRequest:
    """Customer ids of a V1 dict or a V2 `InferRequest`; `InvalidInput` (HTTP 400) names what is wrong."""
    if isinstance(payload, InferRequest):
        return parse_v2(payload)
    return parse_v1(payload)


def to_v1(scores: ChurnScores, model_version: str, registered_model: str, feature_service: str) -> dict:
    """V1 response: one prediction per id, `churn_probability` null when the customer is unknown."""
    predictions = [
        {
            "customer_id": customer_id,
            "churn_probability": probability if known else None,
            "known": known,
        }
        for customer_id, probability, known in zip(
            scores.request.customer_ids, scores.probabilities, scores.known, strict=True
        )
    ]
    return {
        "predictions": predictions,
        "model_version": model_version,
        "registered_model": registered_model,
        "feature_service": feature_service,
    }


class _RequestIds:
    """New request ids: a random prefix drawn per process (again in a forked worker) and a counter; unique
    across processes and restarts like a UUID, without a call for random bytes per request."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.prefix, self.counter = uuid.uuid4().hex, itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}-{next(self.counter):x}"


new_request_id = _RequestIds()
os.register_at_fork(after_in_child=new_request_id.restart)


def request_id(scores: ChurnScores, headers: dict[str, str] | None = None) -> str:
    """The id a response and the prediction log carry: a V2 request's `id`, else the `x-request-id` header,
    else a new one."""
    request = scores.request.v2_request
    if request is not None and request.id:
        return str(request.id)
    return (headers or {}).get("x-request-id") or new_request_id()


def to_v2(scores: ChurnScores, model_name: str, model_version: str, response_id: str = "") -> InferResponse:
    """V2 response: FP64 `churn_probability` (NaN when unknown), BOOL `known`, INT64 `customer_id`, or the
    ones the request's `outputs` name, in that order."""
    request = scores.request.v2_request
    count = len(scores.request.customer_ids)
    probabilities = [p if k else math.nan for p, k in zip(scores.probabilities, scores.known, strict=True)]
    values = (probabilities, list(scores.known), list(scores.request.customer_ids))
    outputs = [
        InferOutput(name=name, shape=[count], datatype=datatype, data=data)
        for (name, datatype), data in zip(V2_OUTPUTS, values, strict=True)
    ]
    if request is not None and request.request_outputs:  # only those asked for, in the order asked
        by_name = {output.name: output for output in outputs}
        outputs = [by_name[requested.name] for requested in request.request_outputs]
    return InferResponse(
        response_id=response_id or (request.id if request is not None and request.id else new_request_id()),
        model_name=model_name,
        model_version=model_version,
        infer_outputs=outputs,
        # raw inputs over gRPC are answered raw (`raw_output_contents`, what Triton's client reads); a REST
        # request's `binary_data_output` parameter or an output's `binary_data` is honoured
        use_binary_outputs=bool(request is not None and request.use_binary_outputs),
        requested_outputs=request.request_outputs if request is not None else None,
    )
