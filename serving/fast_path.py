"""V1 predictions answered by KServe's data plane without the FastAPI layers in front of it.

KServe answers `POST /v1/models/<name>:predict` through FastAPI: a route matched among some twenty, its
dependencies solved, then the timing middleware (trace lines, switched off here), the body-limit and
telemetry layers, before its endpoint calls the data plane. That costs more CPU per request than the
online-store read and the model together (figures: `serving/README.md`, "Beside a bare KServe model").
The request guard has read and checked the body by then, so it hands a V1 predict to :class:`V1Predict`,
which makes the calls KServe's endpoint makes (`model_ready`, `decode`, `infer`, `encode`, in that order)
and answers with the body and headers that endpoint answers with. An error is answered by the FastAPI
app's own exception handler for it (KServe's, and the server's for an unreachable online store), so a
client sees the same status and body either way; KServe's handler logs an unexpected one. V2 requests keep
KServe's route: their binary extension and CloudEvent decoding are KServe's.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from kserve.errors import ModelNotReady

Scope = dict[str, Any]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: The V1 predict path, with the model name KServe's route reads from it.
V1_PREDICT = re.compile(r"^/v1/models/(?P<name>[^/]+):predict$")


class V1Predict:
    """Answer V1 predict requests through `dataplane` as KServe's V1 endpoint does.

    Args:
        dataplane: the server's KServe data plane (model registry, decode, infer, encode).
        app: the FastAPI app whose exception handlers answer errors.
    """

    def __init__(self, dataplane: Any, app: Any):
        self.dataplane, self.app = dataplane, app

    async def __call__(
        self, scope: Scope, name: str, body: bytes, headers: dict[str, str], send: Send
    ) -> None:
        """Answer one request whose body has been read and checked; `headers` lower-cased, as Starlette's."""
        try:
            await self._answer(scope, name, body, headers, send)
        except Exception as exc:  # noqa: BLE001 - every error is answered by the app's handler for it
            await self._error(scope, exc, send)

    async def _answer(
        self, scope: Scope, name: str, body: bytes, headers: dict[str, str], send: Send
    ) -> None:
        dataplane = self.dataplane
        if not await dataplane.model_ready(name, True):
            raise ModelNotReady(name)
        request, attributes = dataplane.decode(body=body, headers=headers)
        response, response_headers = await dataplane.infer(model_name=name, request=request, headers=headers)
        response, encoded_headers = dataplane.encode(
            model_name=name, response=response, headers=headers, req_attributes=attributes
        )
        response_headers.update(encoded_headers)
        response_headers.pop("content-length", None)
        if isinstance(response, AsyncIterator):
            from starlette.responses import StreamingResponse

            await StreamingResponse(content=response)(scope, _disconnected, send)
            return
        if isinstance(response, (bytes, str)):
            content_type, content = None, response.encode() if isinstance(response, str) else response
        else:  # what KServe's ORJSONResponse renders
            content_type = b"application/json"
            content = orjson.dumps(response, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
        # as Starlette's response sets them: the given headers, then a length, and a type unless given
        raw = [
            (key.lower().encode("latin-1"), str(value).encode("latin-1"))
            for key, value in response_headers.items()
        ]
        raw.append((b"content-length", str(len(content)).encode()))
        if content_type is not None and not any(key == b"content-type" for key, _ in raw):
            raw.append((b"content-type", content_type))
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": content})

    async def _error(self, scope: Scope, exc: Exception, send: Send) -> None:
        from starlette.requests import Request

        handlers = self.app.exception_handlers
        handler = next((handlers[kind] for kind in type(exc).__mro__ if kind in handlers), None)
        if handler is None:
            raise exc
        response = await handler(Request(scope), exc)
        await response(scope, _disconnected, send)


async def _disconnected() -> dict[str, Any]:
    """What a response reads of a request whose body was read already: nothing more."""
    return {"type": "http.disconnect"}
