"""The real model server on a real Redis online store that stops and restarts: 503 meanwhile, then answers."""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest

from testing.faults import V1, on_redis, private_redis, redis_unavailable_reason, wait_for_lines
from testing.prerequisites import unavailable
from tests.serving.malformed import CountingConnection, Malformed

IDS = [1, 2, 3]
POLL_SECONDS = 1.0


@pytest.fixture(scope="module")
def redis_server(served_lakehouse, tmp_path_factory):
    """A private Redis holding the served lakehouse's online features; a model server (two workers) on it
    that checks the `champion` alias every second."""
    from components.core.ports import free_port
    from components.core.serving_client import start_in_background
    from testing.stack import StackStartFailed

    reason = redis_unavailable_reason()
    if reason:
        unavailable(reason, "Redis")
    try:
        with private_redis() as redis:
            registry = tmp_path_factory.mktemp("feast-on-redis") / "registry.db"
            settings = on_redis(served_lakehouse.settings, redis, registry).with_policy(
                champion_poll_seconds=POLL_SECONDS
            )
            with start_in_background(settings, host="127.0.0.1", port=free_port(), workers=2) as server:
                yield redis, server
    except StackStartFailed as exc:
        pytest.fail(str(exc), pytrace=False)


def test_redis_stopping_gives_503_and_answers_return_by_themselves(redis_server):
    import redis as redis_client

    from testing.stack import start_alone, stop_alone

    redis, server = redis_server
    host, port = server.url.removeprefix("http://").split(":")
    connection = CountingConnection(host, int(port), timeout=30)
    request = Malformed("good", V1, b'{"instances": [1, 2, 3]}')

    def answer() -> tuple[int, dict]:
        status, body, _ = connection.send_request(request)
        return status, httpx.Response(status, content=body).json()

    status, before = answer()
    assert status == 200 and all(p["known"] for p in before["predictions"])
    redis_client.Redis(port=redis.port).save()  # the stack runs Redis without persistence
    stop_alone(redis)
    try:
        outage = []
        for _ in range(20):
            started = time.monotonic()
            outage.append((*answer(), time.monotonic() - started))
    finally:
        start_alone(redis)
    returned = time.monotonic()
    first_status, first_body = answer()
    recovered_after = time.monotonic() - returned
    with httpx.Client(base_url=server.url, limits=httpx.Limits(max_keepalive_connections=0)) as fresh:
        everywhere = [
            fresh.post(V1, json={"instances": IDS}) for _ in range(20)
        ]  # new connections: both workers
    connection.close()
    slowest = max(seconds for *_, seconds in outage)
    statuses = dict(Counter(status for status, *_ in outage))
    print(f"\nRedis down: {len(outage)} answers {statuses}, slowest {slowest * 1000:.1f} ms;")
    print(f"first answer after Redis was back: {first_status} in {recovered_after * 1000:.1f} ms")
    assert {status for status, *_ in outage} == {503}
    assert all("redis online store cannot be read now" in body["error"] for _, body, _ in outage)
    assert connection.connects == 1  # the 503s kept the connection
    assert first_status == 200 and first_body == before
    assert {response.status_code for response in everywhere} == {200}
    assert all(response.json() == before for response in everywhere)


def test_a_redis_that_does_not_answer_gives_503_within_the_read_timeout(redis_server):
    import os
    import signal

    import redis as redis_client

    from serving.online_features import STORE_TIMEOUT_SECONDS

    redis, server = redis_server
    pid = redis_client.Redis(port=redis.port).info()["process_id"]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        before = http.post(V1, json={"instances": IDS}).json()
        os.kill(pid, signal.SIGSTOP)  # up but silent, as behind a network partition
        try:
            started = time.monotonic()
            silent = http.post(V1, json={"instances": IDS})
            waited = time.monotonic() - started
        finally:
            os.kill(pid, signal.SIGCONT)
        after = http.post(V1, json={"instances": IDS})
    print(f"\nRedis silent: {silent.status_code} after {waited:.2f} s")
    assert silent.status_code == 503
    assert "redis online store cannot be read now: Timeout" in silent.json()["error"]
    assert STORE_TIMEOUT_SECONDS <= waited < STORE_TIMEOUT_SECONDS + 2.0
    assert after.status_code == 200 and after.json() == before


def test_every_worker_polls_the_alias_and_serves_a_promoted_champion(redis_server, served_lakehouse):
    from components.core.model.registry import CHAMPION, tracking_client

    _, server = redis_server
    settings = served_lakehouse.settings
    client = tracking_client(settings)
    switched = f"now serves {settings.model_name} version 2"
    try:
        client.set_registered_model_alias(settings.model_name, CHAMPION, "2")
        took = wait_for_lines(server.log_path, switched, 2, timeout=60)
        with httpx.Client(base_url=server.url, limits=httpx.Limits(max_keepalive_connections=0)) as fresh:
            versions = {fresh.post(V1, json={"instances": IDS}).json()["model_version"] for _ in range(20)}
    finally:
        client.set_registered_model_alias(
            settings.model_name, CHAMPION, str(served_lakehouse.champion_version)
        )
    print(
        f"\nboth processes serve version 2 {took:.1f} s after the alias moved (polled every {POLL_SECONDS} s)"
    )
    assert versions == {"2"}
    back = f"now serves {settings.model_name} version {served_lakehouse.champion_version}"
    wait_for_lines(server.log_path, back, 2, timeout=60)
