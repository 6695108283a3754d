"""Alerts: what the platform tells people (a drifted feature or score, a promotion, a failed run), as
Slack-compatible JSON posted to the `alert_webhook_url` setting and as a line of the `alert_file` setting.

A webhook that is down or slow never fails or holds up the caller: the POST runs in a background thread and
is retried; at exit a process waits for unfinished deliveries at most `EXIT_WAIT` seconds. An alert that
could not be delivered gets a second line in the alert file saying why.
"""

from __future__ import annotations

import atexit
import enum
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from components.core.settings import Settings

#: Tries of one delivery, the seconds one try may take, and the pause before the next.
TRIES, TIMEOUT, BACKOFF = 3, 5.0, 0.5
#: Seconds a process ending waits for deliveries still under way.
EXIT_WAIT = 3.0

#: Deliveries under way: thread -> (the alert, its webhook, the alert file).
_pending: dict[threading.Thread, tuple[Alert, str, str]] = {}
_lock = threading.Lock()


class AlertKind(enum.StrEnum):
    DRIFT = "drift"
    QUALITY = "quality"
    RETRAINING = "retraining"
    SHADOW_FAILED = "shadow_failed"
    PROMOTION = "promotion"
    RUN_FAILED = "run_failed"


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    summary: str
    profile: str
    details: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def slack_message(self) -> dict[str, Any]:
        """Slack's incoming-webhook JSON: the line as `text`, the details as a code block beneath it."""
        line = f"[{self.profile}] {self.kind}: {self.summary}"
        details = json.dumps(self.details, indent=1, sort_keys=True, default=str)
        return {
            "text": line,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": line}},
                {"type": "section", "text": {"type": "mrkdwn", "text": f"```{details}```"}},
            ],
        }


def notify(settings: Settings, kind: AlertKind, summary: str, **details: Any) -> Alert:
    """Record `summary` in the alert file and post it to the webhook in the background; returns at once."""
    alert = Alert(AlertKind(kind), summary, settings.profile, details)
    record = {**asdict(alert), "kind": alert.kind.value}
    _append(settings.alert_file, record)
    if settings.alert_webhook_url:
        thread = threading.Thread(
            target=_deliver, args=(settings.alert_webhook_url, alert, settings.alert_file), daemon=True
        )
        with _lock:
            _pending[thread] = (alert, settings.alert_webhook_url, settings.alert_file)
        thread.start()
    return alert


def wait_for_deliveries(timeout: float = EXIT_WAIT) -> int:
    """Wait up to `timeout` seconds for deliveries under way; how many are still unfinished."""
    deadline = time.monotonic() + timeout
    with _lock:
        threads = list(_pending)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return sum(thread.is_alive() for thread in threads)


def _at_exit() -> None:
    """Give deliveries under way `EXIT_WAIT` seconds; note the ones the process ends without."""
    wait_for_deliveries()
    with _lock:
        unfinished = list(_pending.values())
    for alert, url, alert_file in unfinished:
        reason = f"the process ended while it was being retried (after {EXIT_WAIT:g} s)"
        _append(alert_file, {"kind": "undelivered", "alert_at": alert.at, "webhook": url, "reason": reason})


atexit.register(_at_exit)


def _deliver(url: str, alert: Alert, alert_file: str) -> None:
    reason = ""
    try:
        for attempt in range(TRIES):
            try:
                answer = httpx.post(url, json=alert.slack_message(), timeout=TIMEOUT)
                if answer.is_success:
                    return
                reason = f"HTTP {answer.status_code}: {answer.text[:200]}"
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if attempt + 1 < TRIES:
                time.sleep(BACKOFF * 2**attempt)
        _append(alert_file, {"kind": "undelivered", "alert_at": alert.at, "webhook": url, "reason": reason})
    finally:
        with _lock:
            _pending.pop(threading.current_thread(), None)


def _append(path: str, record: dict[str, Any]) -> None:
    if not path:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, sort_keys=True, default=str) + "\n")
