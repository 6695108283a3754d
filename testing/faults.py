"""Fault drills on a running model server: load during a champion switch, a Redis to stop and restart."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from components.core.settings import SERVED_MODEL_NAME, Settings
from infrastructure.local.redis_server import Redis

V1 = f"/v1/models/{SERVED_MODEL_NAME}:predict"


@dataclass(frozen=True)
class Answer:
    """One answer seen under load: when it came (seconds from the start), its status, the model version it
    names and how long it took (seconds)."""

    at: float
    status: int
    version: str | None
    took: float = 0.0


def v1_answer(http: httpx.Client, ids: list[int], started: float) -> Answer:
    """POST `ids` to the V1 endpoint; an error reaching the server is status 0."""
    sent = time.monotonic()
    try:
        response = http.post(V1, json={"instances": ids})
    except httpx.TransportError:
        return Answer(time.monotonic() - started, 0, None, time.monotonic() - sent)
    version = response.json().get("model_version") if response.status_code == 200 else None
    return Answer(time.monotonic() - started, response.status_code, version, time.monotonic() - sent)


def answers_while(
    url: str, action: Callable[[], None], clients: int = 3, ids: list[int] | None = None
) -> list[Answer]:
    """Send V1 requests from `clients` keep-alive clients and one opening a new connection per request,
    from before `action()` starts until it returns; every answer, in no particular order."""
    ids, answers, done = ids or [1, 2, 3], [], threading.Event()
    started = time.monotonic()

    def ask(fresh: bool) -> None:
        limits = httpx.Limits(max_keepalive_connections=0 if fresh else 1)
        with httpx.Client(base_url=url, timeout=30, limits=limits) as http:
            while not done.is_set():
                answers.append(v1_answer(http, ids, started))

    threads = [threading.Thread(target=ask, args=(index == clients,)) for index in range(clients + 1)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)  # answers from before the action
        action()
        time.sleep(0.3)
    finally:
        done.set()
        for thread in threads:
            thread.join()
    return answers


def wait_for_lines(path: Path, text: str, count: int, timeout: float = 120.0) -> float:
    """Wait until `path` holds `count` lines containing `text`; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if sum(text in line for line in path.read_text(errors="replace").splitlines()) >= count:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{count} lines with {text!r} did not appear in {path} within {timeout:.0f} s")


def redis_unavailable_reason() -> str | None:
    """Why a Redis server cannot run here (not installed and not installable), or None."""
    if shutil.which("redis-server") or (os.geteuid() == 0 and shutil.which("apt-get")):
        return None
    return "redis-server is missing and this user cannot install it (apt-get install -y redis-server)"


@contextlib.contextmanager
def private_redis() -> Iterator[Redis]:
    """The stack's Redis service alone, in a new folder under /tmp on a free port; stopped and removed after.

    Stop and restart it with `testing.stack.stop_alone`/`start_alone`; it keeps its data across a
    restart only when told to `SAVE` first (the stack runs it without persistence).
    """
    from testing.stack import private_config, start_alone, stop_alone

    home = Path(tempfile.mkdtemp(prefix="lakehouse-redis-", dir="/tmp"))
    home.chmod(0o711)  # Redis runs as an unprivileged user
    service = Redis(private_config(home))
    try:
        start_alone(service)
        yield service
    finally:
        stop_alone(service)
        shutil.rmtree(home, ignore_errors=True)


def on_redis(settings: Settings, redis: Redis, registry: Path) -> Settings:
    """`settings` with Feast's online store on `redis` (and a Feast registry of their own), materialized."""
    from components.features.materialize import apply_and_materialize

    changed = dataclasses.replace(
        settings,
        feast_online_store="redis",
        redis_url=f"redis://127.0.0.1:{redis.port}/0",
        feast_registry=str(registry),
    )
    apply_and_materialize(changed)
    return changed
