"""What a node needs from the host before anything starts; each missing thing is named with its fix."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from components.core.ports import port_in_use
from infrastructure.apiserver.build import KUBERNETES_COMMANDS, binary_path
from infrastructure.node import network
from infrastructure.node.config import NodeConfig, port_variable

#: Memory a node needs free: ~0.7 GB for its programs idle, the rest for pods and a first build's link step.
MIN_FREE_MEMORY = 2 << 30
#: Disk a node needs free: images, etcd and logs; a cold build adds Go's module and build caches (~5 GB).
MIN_FREE_DISK = 2 << 30
MIN_FREE_DISK_TO_BUILD = 8 << 30
CGROUP_V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer")


def _available_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def _free_disk(path: Path) -> int:
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def cgroups_problem() -> str | None:
    """None when kubelet can use this host's cgroups (v2 unified, or v1 with the controllers it needs)."""
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        return None
    missing = [name for name in CGROUP_V1_CONTROLLERS if not (root / name).is_dir()]
    if missing:
        return (
            f"cgroup controllers not mounted under {root}: {', '.join(missing)}; mount them "
            "(e.g. `mount -t cgroup -o memory cgroup /sys/fs/cgroup/memory`) or boot with cgroup v2"
        )
    return None


def problems(config: NodeConfig) -> list[str]:
    """Everything that keeps a node from starting here, each with its fix; empty when all is well."""
    found = []
    if os.geteuid() != 0:
        found.append("not root: a node mounts, creates network devices and runs containers; run it as root")
    cgroups = cgroups_problem()
    if cgroups:
        found.append(cgroups)
    if not Path("/proc/sys/net/bridge").exists() and not shutil.which("modprobe"):
        found.append("the br_netfilter kernel module is not loaded: run `modprobe br_netfilter`")
    for name, port in config.ports.items():
        if port_in_use(port, "0.0.0.0"):
            found.append(
                f"port {port} ({name}) is in use: stop what listens there or choose another with "
                f"{port_variable(name)}=PORT"
            )
    memory = _available_memory()
    if memory < MIN_FREE_MEMORY:
        found.append(
            f"{memory >> 20} MiB of memory available, {MIN_FREE_MEMORY >> 20} MiB needed: stop something"
        )
    built = all(binary_path(command=command).exists() for command in KUBERNETES_COMMANDS)
    for folder, needed in (
        (config.home, MIN_FREE_DISK),
        (config.cache, MIN_FREE_DISK if built else MIN_FREE_DISK_TO_BUILD),
    ):
        free = _free_disk(folder)
        if free < needed:
            found.append(
                f"{free >> 20} MiB free on the disk of {folder}, {needed >> 20} MiB needed: free some space"
            )
    if network.kube_proxy_present():
        found.append(
            "another Kubernetes node runs on this machine (kube-proxy's KUBE-PROXY-CANARY chain exists) and "
            "kube-proxy's chain names are machine-wide: stop that node first (`make cluster-down` with its "
            "LAKEHOUSE_CLUSTER_HOME)"
        )
    for cidr in (config.pod_cidr, config.service_cidr):
        owner = network.route_owner(cidr)
        if owner and owner != config.bridge:
            found.append(
                f"{cidr} is already routed to {owner} (another node?): choose another range with "
                "LAKEHOUSE_CLUSTER_POD_CIDR / LAKEHOUSE_CLUSTER_SERVICE_CIDR"
            )
    return found
