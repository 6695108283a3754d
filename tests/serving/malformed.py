"""Seeded malformed inference requests (V1, V2 REST, gRPC); a keep-alive HTTP client counting reconnects."""

from __future__ import annotations

import http.client
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from components.core.settings import SERVED_MODEL_NAME

V1 = f"/v1/models/{SERVED_MODEL_NAME}:predict"
V2 = f"/v2/models/{SERVED_MODEL_NAME}/infer"
JSON = {"content-type": "application/json"}
BAD_CONTENT_TYPES = (
    "text/plain",
    "application/xml",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "image/png",
    "application/json; charset=latin-1",
    "json",
    "",
)


@dataclass(frozen=True)
class Malformed:
    """One bad request: its kind (for the report), path, headers and body (bytes, or chunks sent chunked)."""

    kind: str
    path: str
    body: bytes | list[bytes]
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))


def v2_body(data: object = (1,), shape: object = None, datatype: object = "INT64", **extra: object) -> dict:
    """A V2 request with one input `customer_id` (shape [len(data)] unless given), plus `extra` fields."""
    values = list(data) if isinstance(data, tuple) else data
    tensor = {"name": "customer_id", "shape": [len(values)] if shape is None else shape}
    tensor |= {"datatype": datatype, "data": values}
    return {"inputs": [tensor], **extra}


def _wrong_type(rng: random.Random) -> object:
    return rng.choice(["7", 7.5, True, None, {"id": 7}, [[7]], 2**70, -(2**64), "", 1e300])


def _cases(rng: random.Random, max_body: int) -> list[Callable[[str], tuple[str, object]]]:
    """Makers of a (kind, JSON document or raw bytes) for a protocol `v1`/`v2`."""

    def random_bytes(_: str) -> tuple[str, object]:
        return "random bytes", rng.randbytes(rng.randint(0, 2048))

    def deep(protocol: str) -> tuple[str, object]:
        depth = rng.choice([33, 64, 200, 1100, 5000])
        nested = "[" * depth + "1" + "]" * depth  # as text: json.dumps itself recurses
        v2_template = json.dumps(v2_body(data=[0])).replace("[0]", "%s")
        template = '{"instances": %s}' if protocol == "v1" else v2_template
        return "deep nesting", (template % nested).encode()

    def wrong_type(protocol: str) -> tuple[str, object]:
        if protocol == "v1":
            return "wrong type", rng.choice(
                [
                    {"instances": _wrong_type(rng)},
                    {"instances": [1, _wrong_type(rng)]},
                    {"instances": [{"customer_id": _wrong_type(rng)}]},
                    rng.choice([[1, 2], "instances", 3, None]),
                ]
            )
        return "wrong type", rng.choice(
            [
                v2_body(data=(_wrong_type(rng),)),
                v2_body(datatype=rng.choice(["FP32", "BYTES", "INT32", "UINT64", 7])),
                v2_body(shape=rng.choice(["1", [1.5], [None], {"n": 1}])),
                {"inputs": _wrong_type(rng)},
                {"inputs": [_wrong_type(rng)]},
            ]
        )

    def wrong_shape(protocol: str) -> tuple[str, object]:
        count = rng.randint(1, 5)
        if protocol == "v1":
            return "wrong shape", rng.choice(
                [{"instances": []}, {"instances": list(range(1001 + count))}, {"instances": [[1, 2]] * count}]
            )
        return "wrong shape", rng.choice(
            [
                v2_body(data=tuple(range(count)), shape=[count + 1]),
                v2_body(data=tuple(range(count)), shape=[count, 1]),
                v2_body(data=(), shape=[0]),
                v2_body(shape=[]),
                {"inputs": []},
                {"inputs": [v2_body()["inputs"][0]] * 2},
            ]
        )

    def unknown_field(protocol: str) -> tuple[str, object]:
        name = rng.choice(["x", "customer", "features", "parametres", "instance"])
        if protocol == "v1":
            return "unknown field", rng.choice(
                [{"instances": [1], name: 1}, {"instances": [{"customer_id": 1, name: 2}]}, {name: [1]}]
            )
        tensor = v2_body()["inputs"][0] | {name: 1}
        return "unknown field", rng.choice([v2_body(**{name: 1}), {"inputs": [tensor]}])

    def oversized(protocol: str) -> tuple[str, object]:
        ids = list(range(max_body // 2 + rng.randint(1, max_body)))  # about 3 bytes per id and more
        return "over the size limit", {"instances": ids} if protocol == "v1" else v2_body(data=tuple(ids))

    return [random_bytes, deep, wrong_type, wrong_shape, unknown_field, oversized]


def malformed_requests(seed: int, count: int, max_body: int) -> Iterator[Malformed]:
    """`count` bad requests drawn with `random.Random(seed)`, alternating between V1 and V2 REST.

    Each draws one of: random bytes, a body over `max_body` (sent with a length or chunked), nesting deeper
    than the server allows, wrong types, wrong shapes, unknown fields, or a good body under a bad
    content type.
    """
    rng = random.Random(seed)
    cases = _cases(rng, max_body)
    for index in range(count):
        protocol = ("v1", "v2")[index % 2]
        path = V1 if protocol == "v1" else V2
        if rng.random() < 0.12:
            good = {"instances": [1]} if protocol == "v1" else v2_body()
            headers = {"content-type": rng.choice(BAD_CONTENT_TYPES)}
            yield Malformed("bad content type", path, json.dumps(good).encode(), headers)
            continue
        kind, document = rng.choice(cases)(protocol)
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        if kind == "over the size limit" and rng.random() < 0.5:
            step = rng.randint(4096, 65536)
            chunks = [body[i : i + step] for i in range(0, len(body), step)]
            yield Malformed(kind + " (chunked)", path, chunks)
            continue
        yield Malformed(kind, path, body)


class CountingConnection(http.client.HTTPConnection):
    """An HTTP/1.1 keep-alive connection that counts how often it had to (re)connect."""

    connects = 0

    def connect(self) -> None:
        self.connects += 1
        super().connect()

    def send_request(self, request: Malformed) -> tuple[int, bytes, str]:
        """Send one request on this connection; its status, body and `Connection` header.

        A connection the server closed is opened again on the next request (and counted).
        """
        chunked = isinstance(request.body, list)
        try:
            self.request(
                "POST",
                request.path,
                body=iter(request.body) if chunked else request.body,
                headers=request.headers,
                encode_chunked=chunked,
            )
            response = self.getresponse()
            body = response.read()
        except (ConnectionError, http.client.HTTPException):
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, body, response.getheader("connection", "")


def malformed_grpc_requests(seed: int, count: int) -> Iterator[object]:
    """`count` bad `ModelInferRequest`s drawn with `random.Random(seed)`: wrong names, datatypes, shapes,
    contents and raw bytes that do not match the shape."""
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    rng = random.Random(seed)
    tensor_type = pb.ModelInferRequest.InferInputTensor
    for _ in range(count):
        n = rng.randint(1, 4)
        name, datatype, shape = "customer_id", "INT64", [n]
        contents, raw = pb.InferTensorContents(int64_contents=list(range(n))), None
        match rng.randrange(7):
            case 0:
                name = rng.choice(["id", "customer", "", "customer_ids"])
            case 1:
                datatype = rng.choice(["FP32", "FP64", "BYTES", "INT32", "BOOL", "nonsense"])
                contents = pb.InferTensorContents(fp32_contents=[0.5] * n)
            case 2:
                shape = rng.choice([[n + 1], [n, 1], [], [0]])
            case 3:
                contents = pb.InferTensorContents(int64_contents=[])
            case 4:
                contents, raw = None, rng.randbytes(rng.choice([1, 7, 9, 8 * n + 3]))
            case 5:
                contents = pb.InferTensorContents(int64_contents=list(range(1001)))
                shape = [1001]
            case 6:
                contents = pb.InferTensorContents(bytes_contents=[rng.randbytes(8) for _ in range(n)])
        tensor = tensor_type(name=name, datatype=datatype, shape=shape, contents=contents)
        request = pb.ModelInferRequest(model_name=SERVED_MODEL_NAME, inputs=[tensor])
        if raw is not None:
            request.raw_input_contents.append(raw)
        yield request
