"""Fixtures of the serving tests: a tiny lakehouse with gold tables, a Feast store and an MLflow champion."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from components.core.ports import free_port
from components.core.settings import Settings


@dataclass(frozen=True)
class ServedLakehouse:
    """A tmp lakehouse whose Feast online store and MLflow registry are ready to serve."""

    settings: Settings
    training_set: Any
    pipelines: dict[int, Any]
    champion_version: int


@pytest.fixture(scope="package")
def served_lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedLakehouse]:
    """Gold tables, an applied and materialized Feast store, two registered versions (champion: 1); servers
    started from its settings check the `champion` alias on SIGHUP only."""
    from components.features.materialize import apply_and_materialize, get_training_set
    from testing.champion import register_versions
    from testing.tiny_lakehouse import local_lakehouse, write_gold_tables

    with local_lakehouse(tmp_path_factory.mktemp("lakehouse")) as settings:
        # servers started from these settings check the alias on SIGHUP only: tests that move it must not
        # switch a server another test module is using
        settings = settings.with_policy(champion_poll_seconds=0.0)
        write_gold_tables(settings)
        apply_and_materialize(settings)
        training_set = get_training_set(settings)
        pipelines = register_versions(settings, training_set, versions=2, champion=1)
        yield ServedLakehouse(settings, training_set, pipelines, champion_version=1)


@pytest.fixture(scope="package")
def served(served_lakehouse: ServedLakehouse) -> Iterator[tuple[str, str]]:
    """The model server of the served lakehouse on free loopback ports: (REST base URL, gRPC address)."""
    from components.core.serving_client import start_in_background

    grpc_port = free_port()
    settings = served_lakehouse.settings
    with start_in_background(settings, host="127.0.0.1", port=free_port(), grpc_port=grpc_port) as server:
        yield server.url, f"127.0.0.1:{grpc_port}"


@pytest.fixture(scope="package")
def rest(served: tuple[str, str]) -> Iterator[Any]:
    """An HTTP client of the served model server (`httpx.Client` with its base URL)."""
    import httpx

    with httpx.Client(base_url=served[0], timeout=30) as client:
        yield client


@pytest.fixture(scope="package")
def stub(served: tuple[str, str]) -> Iterator[Any]:
    """A gRPC client of the served model server's Open Inference Protocol service."""
    import grpc
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    with grpc.insecure_channel(served[1]) as channel:
        yield GRPCInferenceServiceStub(channel)
