"""Session fixtures of the cluster tests: a real kube-apiserver on etcd, the rendered overlays."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from components.core.ports import free_ports
from infrastructure.apiserver.build import custom_resource_definitions
from infrastructure.apiserver.server import (
    ApiServer,
    ApiServerStartFailed,
    ApiServerUnavailable,
    private_apiserver,
)
from infrastructure.cluster.manifests import OVERLAYS, objects, render
from testing.manifests import TIMINGS, filled_copy, install_platform_scaffolding
from testing.prerequisites import unavailable


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the `apiserver` fixture is marked `cluster` (`-m "not cluster"` leaves it out)."""
    for item in items:
        if "apiserver" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how long the API server took to start and the server-side checks took to run."""
    if TIMINGS:
        terminalreporter.section("Kubernetes API server timings")
        for what, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{what}: {seconds:.1f} s")


@pytest.fixture(scope="session")
def apiserver() -> Iterator[ApiServer]:
    """etcd + kube-apiserver (built once into `.cache/`) with the KServe, Argo and KFP CRDs, once per session.

    Skips, naming the missing prerequisite, when it cannot run here; fails instead when CI=true.
    """
    try:
        with private_apiserver(ports=free_ports(3), log=lambda line: None) as api:
            TIMINGS["API server start (etcd + kube-apiserver ready)"] = api.started_in
            started = time.monotonic()
            api.install_crds(custom_resource_definitions(log=lambda line: None))
            TIMINGS["CRDs installed (KServe InferenceService, Argo Workflow, KFP ScheduledWorkflow)"] = (
                time.monotonic() - started
            )
            yield api
    except ApiServerUnavailable as exc:
        unavailable(f"the Kubernetes API server cannot run on this machine: {exc}")
    except ApiServerStartFailed as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """The objects of every overlay, rendered from a copy of the manifests with test Secrets filled in."""
    root = filled_copy(tmp_path_factory.mktemp("manifests") / "kubernetes")
    return {overlay: objects(render(overlay, root)) for overlay in OVERLAYS}


@pytest.fixture(scope="session")
def lakehouse_namespace(apiserver: ApiServer, rendered: dict[str, list[dict]]) -> ApiServer:
    """The API server with namespace `lakehouse`, the admission policy and the ServiceAccounts created (those
    of the `node` overlay too: it adds Kubeflow Pipelines' and Argo's)."""
    install_platform_scaffolding(apiserver, rendered["dev"] + rendered["node"])
    return apiserver
