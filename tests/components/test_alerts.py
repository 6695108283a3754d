"""Alerts to a real webhook on loopback and to the alert file; a failing webhook never holds up a caller."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from components.core import alerts
from components.core.alerts import AlertKind, notify, wait_for_deliveries
from components.core.ports import free_port


class Webhook:
    """An HTTP server on loopback that records each JSON body posted to it, answering `status` after
    `delay` seconds."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.bodies: list[dict] = []
        self.status, self.delay = status, delay
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(hook.delay)
                hook.bodies.append(body)
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok" if hook.status == 200 else b"no_service")

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that gave up on a slow answer

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/lakehouse"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def _lines(settings) -> list[dict]:
    with open(settings.alert_file, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def test_an_alert_reaches_the_webhook_as_slack_json_and_the_alert_file(settings, webhook):
    settings = dataclasses.replace(settings, alert_webhook_url=webhook.url)
    alert = notify(settings, AlertKind.DRIFT, "PSI above 0.2 for tenure_days", psi={"tenure_days": 0.31})
    assert wait_for_deliveries(10) == 0
    (body,) = webhook.bodies
    assert body["text"] == "[local] drift: PSI above 0.2 for tenure_days"
    assert "tenure_days" in body["blocks"][1]["text"]["text"]
    (line,) = _lines(settings)
    assert line["kind"] == "drift" and line["summary"] == alert.summary and line["details"]["psi"]


@pytest.mark.parametrize("why", ["down", "refusing", "slow"])
def test_a_webhook_that_fails_never_holds_up_the_caller_and_the_reason_is_written(settings, monkeypatch, why):
    monkeypatch.setattr(alerts, "BACKOFF", 0.05)
    monkeypatch.setattr(alerts, "TIMEOUT", 0.5)
    hook = None
    if why == "down":
        url = f"http://127.0.0.1:{free_port()}/hooks/lakehouse"
    else:
        hook = Webhook(status=503) if why == "refusing" else Webhook(delay=2.0)
        url = hook.url
    settings = dataclasses.replace(settings, alert_webhook_url=url)
    try:
        started = time.monotonic()
        notify(settings, AlertKind.RUN_FAILED, "churn-training run failed: step 'transform'")
        assert time.monotonic() - started < 0.2, "the caller waited for the webhook"
        assert wait_for_deliveries(10) == 0
    finally:
        if hook is not None:
            hook.close()
    alert, undelivered = _lines(settings)
    assert alert["kind"] == "run_failed"
    assert undelivered["kind"] == "undelivered" and undelivered["alert_at"] == alert["at"]
    expected = {"down": "ConnectError", "refusing": "HTTP 503: no_service", "slow": "ReadTimeout"}[why]
    assert expected in undelivered["reason"], undelivered


def test_without_a_webhook_or_file_nothing_is_sent_or_written(settings, tmp_path):
    settings = dataclasses.replace(settings, alert_webhook_url="", alert_file="")
    notify(settings, AlertKind.PROMOTION, "version 2 is the champion")
    assert wait_for_deliveries(1) == 0
    assert not list(tmp_path.rglob("alerts.jsonl"))
