"""Reject bad inference requests before KServe reads them: size, content type, JSON depth, unknown fields.

KServe reads any body whole, parses V2 bodies with the standard library (a deeply nested body can end in a
RecursionError, a 500) and ignores fields it does not know. This ASGI middleware answers such requests
with a 4xx and a one-line `{"error": ...}` instead, and leaves the connection open. It also answers 404 to
every path of the model repository extension, which KServe serves to anyone on the inference port (one
`unload` and every prediction is a 404 until the server restarts). It counts and times every inference
request by protocol and status, and answers `GET /metrics` with every worker's series (`serving.metrics`).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER

from serving import metrics
from serving.fast_path import V1_PREDICT, V1Predict
from serving.protocol import shown

#: Deepest JSON nesting a request may have (a V2 request needs 4 levels).
MAX_JSON_DEPTH = 32
JSON_TYPES = ("application/json", "application/cloudevents+json")
#: How the paths of the inference endpoints end: V1 predict and explain, V2 infer.
INFERENCE_PATHS = (":predict", ":explain", "/infer")
#: Fields of an Open Inference Protocol request, and of each of its input and output tensors.
V2_REQUEST_FIELDS = frozenset({"id", "parameters", "inputs", "outputs"})
V2_INPUT_FIELDS = frozenset({"name", "shape", "datatype", "parameters", "data"})
V2_OUTPUT_FIELDS = frozenset({"name", "parameters"})

#: `/v2/models/<name>/versions/<version>/infer`: a version the server serves is answered as the model.
VERSIONED_INFER = re.compile(r"^/v2/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/infer$")
#: Bytes per element of the fixed-width tensor datatypes (BYTES elements carry their own lengths).
DATATYPE_BYTES = {
    "BOOL": 1, "UINT8": 1, "INT8": 1, "UINT16": 2, "INT16": 2, "FP16": 2, "BF16": 2,
    "UINT32": 4, "INT32": 4, "FP32": 4, "UINT64": 8, "INT64": 8, "FP64": 8,
}  # fmt: skip
#: A client error's body is cut to this many characters of message (KServe's validation errors echo the
#: offending input, however large).
MAX_ERROR_CHARS = 1024

#: Path prefix of the REST model repository extension (index, load, unload): never served here.
REPOSITORY_PATH_PREFIX = "/v2/repository"
REPOSITORY_REFUSED = (
    "the model repository extension is not served: the server loads the champion when it starts and "
    "switches to a new one when the alias moves or on SIGHUP"
)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class RejectedRequest(Exception):
    """A request answered with `status` and `message` before the model sees it."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class RequestGuard:
    """ASGI middleware in front of KServe's app, for the inference endpoints (`POST` to `INFERENCE_PATHS`)
    and the model repository extension (404 for any method).

    Args:
        app: the ASGI app (KServe's FastAPI app).
        max_body_bytes: largest body read; a larger one is answered 413 without being read.
    """

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        max_body_bytes: int,
        served_versions: Callable[[str], list[str] | None] = lambda name: None,
        v1_predict: V1Predict | None = None,
    ):
        self.app = app
        self.max_body_bytes = max_body_bytes
        #: the versions a model is served by (None: no such model here), for `/versions/<v>/infer`
        self.served_versions = served_versions
        #: answers a checked V1 predict without FastAPI's layers (None: every request goes to `app`)
        self.v1_predict = v1_predict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(REPOSITORY_PATH_PREFIX):
            await _answer(send, 404, REPOSITORY_REFUSED)
            return
        if scope["type"] == "http" and scope["path"] == "/metrics" and scope["method"] == "GET":
            await _metrics(scope, send)
            return
        inference = scope["type"] == "http" and scope["method"] == "POST"
        if not inference or not scope["path"].endswith(INFERENCE_PATHS):
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        held: list[dict[str, Any]] = []

        async def measured(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                if 400 <= status[0] < 500:  # held until its body is known, to cut what it echoes
                    held.append(message)
                    return
            if held and message["type"] == "http.response.body":
                for part in _capped(held.pop(), message):
                    await send(part)
                return
            await send(message)

        try:
            await self._guarded(scope, receive, measured)
        finally:
            protocol = "v1" if scope["path"].startswith("/v1/") else "v2-rest"
            metrics.answered(protocol, str(status[0]), time.perf_counter() - started)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        try:
            scope = self._unversioned(scope)
            json_length = self._check_headers(scope["path"], headers)
            body = await self._read_body(receive)
            if json_length is not None and json_length > len(body):
                raise RejectedRequest(
                    400,
                    f"{INFERENCE_CONTENT_LENGTH_HEADER} is {json_length} but the body has {len(body)} bytes",
                )
            document = self._check_json(scope["path"], body if json_length is None else body[:json_length])
            if json_length is not None and isinstance(document, dict):
                check_binary_sizes(document, len(body) - json_length)
        except RejectedRequest as exc:
            await _answer(send, exc.status, str(exc))
            return
        found = V1_PREDICT.match(scope["path"]) if self.v1_predict is not None else None
        if found is not None:
            headers.setdefault("content-type", "application/json")
            await self.v1_predict(scope, found["name"], body, headers, send)
            return
        # KServe reads a body by its content type: JSON for a JSON-only request, bytes for one of the binary
        # extension, whatever the client labelled it (none, as Triton's client sends, counts as JSON)
        wanted = b"application/json" if json_length is None else b"application/octet-stream"
        if json_length is not None or "content-type" not in headers:
            kept = [(key, value) for key, value in scope["headers"] if key.lower() != b"content-type"]
            scope = {**scope, "headers": [*kept, (b"content-type", wanted)]}
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _unversioned(self, scope: Scope) -> Scope:
        """`/v2/models/<m>/versions/<v>/infer` as `/v2/models/<m>/infer` when `v` is served; 404 otherwise."""
        found = VERSIONED_INFER.match(scope["path"])
        if not found:
            return scope
        name, version = found["name"], found["version"]
        served = self.served_versions(name)
        if served is None:
            raise RejectedRequest(404, f"model {shown(name)} is not served here")
        if version not in served:
            raise RejectedRequest(
                404,
                f"model {name!r} version {shown(version)} is not served here; it serves {', '.join(served)}",
            )
        path = f"/v2/models/{name}/infer"
        return {**scope, "path": path, "raw_path": path.encode()}

    def _check_headers(self, path: str, headers: dict[str, str]) -> int | None:
        """Check the declared size and content type; returns a binary V2 request's JSON header length."""
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            limit = self.max_body_bytes
            raise RejectedRequest(413, f"request body of {declared} bytes is over the limit of {limit}")
        content_type = headers.get("content-type", "application/json")
        media_type, _, parameters = content_type.partition(";")
        media_type = media_type.strip().lower()
        charset = parameters.lower().replace(" ", "").partition("charset=")[2].split(";")[0].strip('"')
        binary_length = headers.get(INFERENCE_CONTENT_LENGTH_HEADER.lower())
        if path.startswith("/v2/") and binary_length is not None:
            # the binary tensor extension: a JSON header, then the tensors' bytes; Triton's client sends it
            # with no content type (read as application/json), others as application/octet-stream; KServe
            # and Triton accept either
            if media_type not in (*JSON_TYPES, "application/octet-stream") or not binary_length.isdigit():
                raise RejectedRequest(
                    400,
                    "a binary V2 request needs content-type application/octet-stream or application/json and "
                    f"a whole number in {INFERENCE_CONTENT_LENGTH_HEADER}, got {content_type!r} and "
                    f"{binary_length!r}",
                )
            return int(binary_length)
        if media_type not in JSON_TYPES or charset not in ("", "utf-8", "utf8"):
            raise RejectedRequest(415, f"content-type must be application/json (UTF-8), got {content_type!r}")
        return None

    async def _read_body(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                raise RejectedRequest(400, "the request body did not arrive")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise RejectedRequest(413, f"request body is over the limit of {self.max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    def _check_json(path: str, body: bytes) -> Any:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise RejectedRequest(400, f"request body is not valid JSON: {exc}") from exc
        depth = json_depth(document, MAX_JSON_DEPTH)
        if depth > MAX_JSON_DEPTH:
            raise RejectedRequest(400, f"request body is nested deeper than {MAX_JSON_DEPTH} levels")
        if path.startswith("/v2/") and path.endswith("/infer") and isinstance(document, dict):
            check_v2_fields(document)
        return document


def json_depth(document: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON document (a scalar is 0), counted up to `limit` + 1."""
    depth, level = 0, [document]
    while level and depth <= limit:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            break
        depth += 1
        level = [child for each in containers for child in _children(each)]
    return depth


def _children(container: dict | list) -> Any:
    return container.values() if isinstance(container, dict) else container


def check_v2_fields(document: dict[str, Any]) -> None:
    """Raise `RejectedRequest` (400) naming any field the Open Inference Protocol does not define."""
    _no_unknown(document, V2_REQUEST_FIELDS, "request")
    for kind, allowed in (("inputs", V2_INPUT_FIELDS), ("outputs", V2_OUTPUT_FIELDS)):
        tensors = document.get(kind)
        for index, tensor in enumerate(tensors if isinstance(tensors, list) else []):
            if isinstance(tensor, dict):
                _no_unknown(tensor, allowed, f"{kind}[{index}]")


def check_binary_sizes(document: dict[str, Any], tail: int) -> None:
    """Raise `RejectedRequest` (400) unless the inputs' `binary_data_size`s are whole numbers of bytes that
    fit their datatype and shape and add up to the `tail` bytes after the JSON header (KServe would fail
    on them with a 500)."""
    total = 0
    inputs = document.get("inputs")
    for index, tensor in enumerate(inputs if isinstance(inputs, list) else []):
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is None:
            continue
        where = f"inputs[{index}]"
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise RejectedRequest(
                400,
                f"{where}.parameters.binary_data_size must be a whole number of bytes, got {shown(size)}",
            )
        width, shape = DATATYPE_BYTES.get(tensor.get("datatype")), tensor.get("shape")
        if width and isinstance(shape, list) and all(isinstance(n, int) and n >= 0 for n in shape):
            needed = width * math.prod(shape)
            if size != needed:
                raise RejectedRequest(
                    400,
                    f"{where} ({tensor['datatype']}, shape {shape}) takes {needed} bytes of binary data, "
                    f"its binary_data_size says {size}",
                )
        total += size
    if total != tail:
        raise RejectedRequest(
            400, f"{tail} bytes follow the JSON header, but the inputs' binary_data_size add up to {total}"
        )


def _capped(start: dict[str, Any], body: dict[str, Any]) -> list[dict[str, Any]]:
    """A client error's response with its message cut to `MAX_ERROR_CHARS` (the whole body when short)."""
    content = body.get("body", b"")
    if len(content) <= MAX_ERROR_CHARS or body.get("more_body", False):
        return [start, body]
    text = content.decode("utf-8", "replace")
    cut = orjson.dumps({"error": f"{text[:MAX_ERROR_CHARS]}... (an error of {len(text)} characters, cut)"})
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(cut)).encode()))
    return [{**start, "headers": headers}, {**body, "body": cut}]


def _no_unknown(mapping: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise RejectedRequest(400, f"unknown field(s) in {where}: {', '.join(map(repr, unknown))}")


async def _answer(send: Send, status: int, message: str) -> None:
    body = orjson.dumps({"error": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _metrics(scope: Scope, send: Send) -> None:
    """`GET /metrics`: every process's series, KServe's and the platform's."""
    accept = next(
        (value.decode("latin-1") for key, value in scope["headers"] if key.lower() == b"accept"), None
    )
    body, content_type = metrics.exposition(accept)
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
