"""V1 predictions answered through KServe's data plane without FastAPI's layers (`serving/fast_path.py`): for
every kind of request and failure, the same status, headers and body as KServe's own route gives."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from components.core.settings import SERVED_MODEL_NAME
from serving.model import ChurnModel
from serving.request_guard import RequestGuard

PATH = f"/v1/models/{SERVED_MODEL_NAME}:predict"
KNOWN, UNKNOWN = 1, 999


@pytest.fixture(scope="module")
def apps(served_lakehouse) -> Iterator[tuple[ChurnModel, Any, Any]]:
    """The loaded model, the server's application (guard with the fast path) and the same guard without it."""
    from serving.model_server import ChurnModelServer

    model = ChurnModel(served_lakehouse.settings)
    model.load()
    server = ChurnModelServer(bind_host="127.0.0.1", grpc=None, processes=1, http_port=0)
    server._register_and_check_atleast_one_model_is_ready([model])
    fast = server._http_server().config.app
    assert fast.v1_predict is not None
    plain = RequestGuard(fast.app, fast.max_body_bytes, fast.served_versions)
    yield model, fast, plain
    model.close_log()


def _call(app: Any, body: bytes, path: str = PATH, headers: list[tuple[bytes, bytes]] | None = None) -> tuple:
    """One POST through `app`: (status, headers as a sorted list, body)."""
    headers = headers if headers is not None else [(b"content-type", b"application/json")]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"test"), (b"content-length", str(len(body)).encode()), *headers],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {},
    }  # fmt: skip
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        asyncio.run(app(scope, receive, send))
    except RuntimeError:  # Starlette answers 500, then raises the error again for the server to log
        assert sent and sent[0]["status"] == 500
    start = sent[0]
    content = b"".join(message.get("body", b"") for message in sent[1:])
    return start["status"], sorted((key.lower(), value) for key, value in start["headers"]), content


#: Headers made anew for every answer (a CloudEvent's id and time)
FRESH = (b"ce-id", b"ce-time")


def _same(apps, body: bytes, **kwargs) -> tuple:
    _, fast, plain = apps
    answered, expected = _call(fast, body, **kwargs), _call(plain, body, **kwargs)

    def kept(answer: tuple) -> tuple:
        return answer[0], [header for header in answer[1] if header[0] not in FRESH], answer[2]

    assert kept(answered) == kept(expected)
    return answered


def _body(instances: Any) -> bytes:
    return orjson.dumps({"instances": instances})


def test_predictions_match_kserves_route(apps):
    status, headers, content = _same(apps, _body([{"customer_id": KNOWN}, UNKNOWN]))
    assert status == 200 and (b"content-type", b"application/json") in headers
    answers = orjson.loads(content)["predictions"]
    assert [answer["customer_id"] for answer in answers] == [KNOWN, UNKNOWN]
    assert 0 < answers[0]["churn_probability"] < 1 and answers[1]["known"] is False


def test_no_content_type_is_read_as_json_as_kserve_reads_it(apps):
    assert _same(apps, _body([KNOWN]), headers=[])[0] == 200


@pytest.mark.parametrize(
    "instances", [[], [{"customer_id": "seventeen"}], [{"customer": 1}], "not a list", [True]]
)
def test_bad_input_is_the_same_400(apps, instances):
    status, _, content = _same(apps, _body(instances))
    assert status == 400 and orjson.loads(content)["error"]


def test_a_model_not_served_here_is_the_same_404(apps):
    assert _same(apps, _body([KNOWN]), path="/v1/models/another:predict")[0] == 404


def test_a_model_not_ready_is_the_same_503(apps, monkeypatch):
    model, _, _ = apps
    monkeypatch.setattr(model, "ready", False)
    assert _same(apps, _body([KNOWN]))[0] == 503


def test_an_unreachable_online_store_is_the_same_503_with_retry_after(apps, monkeypatch):
    model, _, _ = apps

    def locked(ids):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(model.features, "read_stamped", locked)
    status, headers, content = _same(apps, _body([KNOWN]))
    assert status == 503 and (b"retry-after", b"1") in headers
    assert "database is locked" in orjson.loads(content)["error"]


def test_a_model_that_raises_is_the_same_500(apps, monkeypatch):
    model, _, _ = apps

    def broken(payload, headers=None):
        raise RuntimeError("scorer broke")

    monkeypatch.setattr(model, "predict", broken)
    status, _, content = _same(apps, _body([KNOWN]))
    assert status == 500 and "scorer broke" in orjson.loads(content)["error"]


def test_a_cloudevent_is_answered_as_kserve_answers_it(apps):
    headers = [
        (b"content-type", b"application/json"),
        (b"ce-specversion", b"1.0"),
        (b"ce-id", b"event-1"),
        (b"ce-source", b"test"),
        (b"ce-type", b"churn.request"),
    ]
    status, answered_headers, _ = _same(apps, _body([KNOWN]), headers=headers)
    assert status == 200 and {b"ce-specversion", *FRESH} <= {key for key, _ in answered_headers}
