"""A real single-node cluster: Ready, a restricted pod's logs, a Service by DNS name, idempotent `up`, and a
`down` that leaves nothing behind on the host."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from components.core.ports import free_ports
from infrastructure.local.procs import start_ticks
from infrastructure.node.config import DEFAULT_PORTS, load_config
from infrastructure.node.images import BUSYBOX_IMAGE
from infrastructure.node.node import NodeUnavailable, _stragglers, down, kubectl, node_ready, running, up
from tests.node.conftest import TIMINGS, RunningNode, apply, restricted_namespace
from tests.node.host import HostSnapshot

NAMESPACE = "node-test"
RESTRICTED_CONTAINER = {
    "image": BUSYBOX_IMAGE,
    "imagePullPolicy": "Never",
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "seccompProfile": {"type": "RuntimeDefault"},
        "capabilities": {"drop": ["ALL"]},
    },
    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}},
}


def _remember(node: RunningNode, pids: list[int]) -> None:
    """Note processes of the node (with their start time, so a reused pid is not mistaken for one)."""
    node.pids |= {(pid, start_ticks(pid)) for pid in pids}


def _pod(
    name: str, command: list[str], restart: str = "Never", volumes: dict[str, str] | None = None
) -> dict:
    """A pod that meets Pod Security `restricted`; `volumes` maps a claim name to where it is mounted."""
    container = {**RESTRICTED_CONTAINER, "name": name, "command": command}
    spec: dict = {"restartPolicy": restart, "automountServiceAccountToken": False, "containers": [container]}
    if volumes:
        container["volumeMounts"] = [{"name": claim, "mountPath": path} for claim, path in volumes.items()]
        spec["volumes"] = [
            {"name": claim, "persistentVolumeClaim": {"claimName": claim}} for claim in volumes
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "spec": spec,
    }


def _phase(node: RunningNode, pod: str) -> str:
    done = kubectl(
        node.config, "-n", NAMESPACE, "get", "pod", pod, "-o", "jsonpath={.status.phase}", check=False
    )
    return done.stdout.strip()


def _wait_phase(node: RunningNode, pod: str, phases: set[str], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while (phase := _phase(node, pod)) not in phases:
        if time.monotonic() > deadline:
            described = kubectl(node.config, "-n", NAMESPACE, "describe", "pod", pod, check=False).stdout
            pytest.fail(f"pod {pod} is {phase!r}, not {phases}, after {timeout:.0f} s:\n{described[-3000:]}")
        time.sleep(0.5)
    return phase


@pytest.fixture(scope="module")
def namespace(node: RunningNode) -> str:
    return restricted_namespace(node, NAMESPACE)


def test_node_is_ready(node: RunningNode) -> None:
    assert node_ready(node.config)
    nodes = json.loads(kubectl(node.config, "get", "nodes", "-o", "json").stdout)["items"]
    assert [item["metadata"]["name"] for item in nodes] == [node.config.node_name]
    addresses = {a["type"]: a["address"] for a in nodes[0]["status"]["addresses"]}
    assert addresses["InternalIP"] == node.config.node_ip
    _remember(node, [record.pid for record in running(node.config).values()])


def test_restricted_pod_runs_and_its_logs_are_readable(node: RunningNode, namespace: str) -> None:
    started = time.monotonic()
    apply(node, _pod("restricted", ["sh", "-c", "echo uid=$(id -u); touch /x 2>/dev/null || echo read-only"]))
    assert _wait_phase(node, "restricted", {"Succeeded", "Failed"}) == "Succeeded"
    TIMINGS["a restricted pod created, run and finished"] = time.monotonic() - started
    logs = kubectl(node.config, "-n", NAMESPACE, "logs", "restricted").stdout
    assert "uid=10001" in logs and "read-only" in logs


def test_service_is_reached_by_its_dns_name(node: RunningNode, namespace: str) -> None:
    serve = "while true; do echo served-by-web | nc -l -p 8080; done"
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": NAMESPACE},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    apply(node, _pod("web", ["sh", "-c", serve], restart="Always"), service)
    _wait_phase(node, "web", {"Running"})
    name = f"web.{NAMESPACE}.svc.cluster.local"
    ask = f"nslookup {name} && for i in $(seq 10); do nc -w 2 web 80 </dev/null && exit 0; sleep 1; done"
    apply(node, _pod("client", ["sh", "-c", ask]))
    phase = _wait_phase(node, "client", {"Succeeded", "Failed"})
    logs = kubectl(node.config, "-n", NAMESPACE, "logs", "client").stdout
    assert phase == "Succeeded", logs
    assert "served-by-web" in logs
    _remember(node, _stragglers(node.config))


def test_second_up_only_checks(node: RunningNode) -> None:
    before = {name: record.pid for name, record in running(node.config).items()}
    lines: list[str] = []
    assert up(node.config, log=lines.append) is False
    assert {name: record.pid for name, record in running(node.config).items()} == before
    assert any("already runs" in line for line in lines)


def test_a_second_node_beside_it_is_refused(node: RunningNode, tmp_path: Path) -> None:
    ports = dict(zip(DEFAULT_PORTS, free_ports(len(DEFAULT_PORTS)), strict=True))
    other = load_config(tmp_path / "other", ports, {"LAKEHOUSE_CLUSTER_POD_CIDR": "10.246.0.0/16"})
    with pytest.raises(NodeUnavailable, match="another Kubernetes node runs on this machine"):
        up(other, log=lambda line: None)
    assert not other.kubeconfig.exists(), "nothing of the second node was written"


def test_down_then_up_finds_objects_and_volume_data_again(node: RunningNode, namespace: str) -> None:
    volume = node.config.home / "volumes" / "data"
    volume.mkdir(parents=True, exist_ok=True)
    os.chown(volume, 10001, 10001)
    claim = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Mi"}}}
    apply(
        node,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "node-test-data"},
            "spec": {
                "capacity": {"storage": "10Mi"},
                "storageClassName": "manual",
                "claimRef": {"namespace": NAMESPACE, "name": "data"},
                "hostPath": {"path": str(volume), "type": "Directory"},
                **{"accessModes": claim["accessModes"]},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": NAMESPACE},
            "spec": {**claim, "storageClassName": "manual", "volumeName": "node-test-data"},
        },
    )
    apply(node, _pod("writer", ["sh", "-c", "echo kept > /data/file"], volumes={"data": "/data"}))
    assert _wait_phase(node, "writer", {"Succeeded", "Failed"}) == "Succeeded"
    down(node.config, log=lambda line: None)
    started = time.monotonic()
    assert up(node.config, log=lambda line: None) is True
    TIMINGS["up again after a plain down (warm)"] = time.monotonic() - started
    assert node_ready(node.config)
    apply(node, _pod("reader", ["cat", "/data/file"], volumes={"data": "/data"}))
    assert _wait_phase(node, "reader", {"Succeeded", "Failed"}) == "Succeeded"
    assert kubectl(node.config, "-n", NAMESPACE, "logs", "reader").stdout.strip() == "kept"


def test_down_leaves_nothing_behind(node: RunningNode) -> None:
    _remember(node, [record.pid for record in running(node.config).values()] + _stragglers(node.config))
    started = time.monotonic()
    down(node.config, wipe=False, log=lambda line: None)
    TIMINGS["down"] = time.monotonic() - started
    after = HostSnapshot.take()
    assert not running(node.config)
    assert not [pid for pid, ticks in node.pids if start_ticks(pid) == ticks], "processes survived down"
    left = {kind: items for kind, items in after.added_since(node.before).items() if items}
    assert not left, f"down left these behind: {left}"
    assert not [m for m in after.mounts if m.startswith(str(node.config.home))]
    assert after.default_route == node.before.default_route
    assert after.eth0 == node.before.eth0
    assert after.sysctls == node.before.sysctls
    assert (node.config.home / "etcd").is_dir(), "plain down keeps the state"
