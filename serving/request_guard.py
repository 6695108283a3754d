"""Reject bad inference requests before KServe reads them: size, content type, JSON depth, unknown fields.

KServe reads any body whole, parses V2 bodies with the standard library (a deeply nested body can end in a
RecursionError, a 500) and ignores fields it does not know. This ASGI middleware answers such requests
with a 4xx and a one-line `{"error": ...}` instead, and leaves the connection open. It also answers 404 to
every path of the model repository extension, which KServe serves to anyone on the inference port (one
`unload` and every prediction is a 404 until the server restarts). It counts and times every inference
request by protocol and status, and answers `GET /metrics` with every worker's series (`serving.metrics`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER

from serving import metrics

#: Deepest JSON nesting a request may have (a V2 request needs 4 levels).
MAX_JSON_DEPTH = 32
JSON_TYPES = ("application/json", "application/cloudevents+json")
#: How the paths of the inference endpoints end: V1 predict and explain, V2 infer.
INFERENCE_PATHS = (":predict", ":explain", "/infer")
#: Fields of an Open Inference Protocol request, and of each of its input and output tensors.
V2_REQUEST_FIELDS = frozenset({"id", "parameters", "inputs", "outputs"})
V2_INPUT_FIELDS = frozenset({"name", "shape", "datatype", "parameters", "data"})
V2_OUTPUT_FIELDS = frozenset({"name", "parameters"})

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

    def __init__(self, app: Callable[..., Awaitable[None]], max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

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

        async def measured(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._guarded(scope, receive, measured)
        finally:
            protocol = "v1" if scope["path"].startswith("/v1/") else "v2-rest"
            series = metrics.series()
            series.requests.labels(protocol, str(status[0])).inc()
            series.latency.labels(protocol).observe(time.perf_counter() - started)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        try:
            json_length = self._check_headers(scope["path"], headers)
            body = await self._read_body(receive)
            self._check_json(scope["path"], body if json_length is None else body[:json_length])
        except RejectedRequest as exc:
            await _answer(send, exc.status, str(exc))
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
    def _check_json(path: str, body: bytes) -> None:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise RejectedRequest(400, f"request body is not valid JSON: {exc}") from exc
        depth = json_depth(document, MAX_JSON_DEPTH)
        if depth > MAX_JSON_DEPTH:
            raise RejectedRequest(400, f"request body is nested deeper than {MAX_JSON_DEPTH} levels")
        if path.startswith("/v2/") and path.endswith("/infer") and isinstance(document, dict):
            check_v2_fields(document)


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
