"""The session's single-node cluster: started once, on free ports, with a state folder of its own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from components.core.ports import free_ports
from infrastructure.apiserver.build import BuildError
from infrastructure.node.binaries import install_host_tools
from infrastructure.node.config import DEFAULT_PORTS, NodeConfig, load_config
from infrastructure.node.node import NodeStartFailed, NodeUnavailable, down, up
from infrastructure.node.prerequisites import problems
from testing.prerequisites import unavailable
from tests.node.host import HostSnapshot

#: Ranges apart from the defaults, so that the test node's routes never meet a user's node's.
TEST_POD_CIDR, TEST_SERVICE_CIDR = "10.245.0.0/16", "10.97.0.0/16"
TIMINGS: dict[str, float] = {}


@dataclass
class RunningNode:
    """The running node, what the host looked like before it started, and the pids it ran."""

    config: NodeConfig
    before: HostSnapshot
    pids: set[tuple[int, int | None]] = field(default_factory=set)


#: The test that stops the session's node and checks the host: it runs after every other node test.
TEARDOWN_TEST = "test_down_leaves_nothing_behind"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the `node` fixture is marked `node` (the default run leaves them out), and the
    teardown check runs last, whichever module holds the other node tests."""
    for item in items:
        if "node" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.node)
    items.sort(key=lambda item: item.name == TEARDOWN_TEST)  # stable: the rest keep their order


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("single-node cluster timings")
        for what, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{what}: {seconds:.1f} s")


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A node (etcd, control plane, containerd, kubelet, kube-proxy, CoreDNS) once per session.

    Skips, naming what is missing, when this machine cannot run one; fails instead when CI=true.
    """
    environ = {
        "LAKEHOUSE_CLUSTER_POD_CIDR": TEST_POD_CIDR,
        "LAKEHOUSE_CLUSTER_SERVICE_CIDR": TEST_SERVICE_CIDR,
    }
    ports = dict(zip(DEFAULT_PORTS, free_ports(len(DEFAULT_PORTS)), strict=True))
    config = load_config(tmp_path_factory.mktemp("node") / "cluster", ports, environ)
    found = problems(config)
    if found:
        unavailable("a Kubernetes node cannot run on this machine: " + "; ".join(found), "the node")
    started = time.monotonic()
    try:
        install_host_tools(log=lambda line: None)  # `up` does too; the snapshot reads iptables already
        before = HostSnapshot.take()
        up(config, log=lambda line: None)
    except (NodeUnavailable, BuildError) as exc:
        unavailable(f"a Kubernetes node cannot run on this machine: {exc}", "the node")
    except NodeStartFailed as exc:
        pytest.fail(str(exc), pytrace=False)
    TIMINGS["up (binaries cached or built)"] = time.monotonic() - started
    try:
        yield RunningNode(config, before)
    finally:
        down(config, wipe=True, log=lambda line: None)


def apply(node: RunningNode, *objects: dict) -> None:
    """`kubectl apply` the objects on the test node."""
    import yaml

    from infrastructure.node.node import kubectl

    kubectl(node.config, "apply", "-f", "-", input=yaml.safe_dump_all(objects))


def restricted_namespace(node: RunningNode, name: str) -> str:
    """Create namespace `name` enforcing Pod Security `restricted`; returns once its default ServiceAccount
    exists (a pod created before it is refused)."""
    from infrastructure.node.node import kubectl

    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    apply(node, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
    deadline = time.monotonic() + 60
    while kubectl(node.config, "-n", name, "get", "serviceaccount", "default", check=False).returncode:
        assert time.monotonic() < deadline, f"the default ServiceAccount of {name} never appeared"
        time.sleep(0.5)
    return name
