"""Folders, ports, address ranges and names of one single-node cluster (options, LAKEHOUSE_CLUSTER_*)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from components.core.settings import REPO_ROOT

#: Every TCP port a node listens on, with its default (upstream's, so a lone cluster looks familiar).
DEFAULT_PORTS: dict[str, int] = {
    "etcd": 2379,
    "etcd-peer": 2380,
    "apiserver": 6443,
    "kubelet": 10250,
    "kubelet-healthz": 10248,
    "controller-manager": 10257,
    "scheduler": 10259,
    "kube-proxy-healthz": 10256,
    "kube-proxy-metrics": 10249,
}
DEFAULT_POD_CIDR = "10.244.0.0/16"
DEFAULT_SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_DOMAIN = "cluster.local"
#: Written under the state folder by the first `up`: later commands use the same ports and ranges.
CONFIG_FILE = "node.json"


class NodeConfigError(ValueError):
    """An option or LAKEHOUSE_CLUSTER_* variable holds a value the node cannot use; the message names it."""


def port_variable(name: str) -> str:
    """The environment variable that sets port `name`, e.g. LAKEHOUSE_CLUSTER_APISERVER_PORT."""
    return f"LAKEHOUSE_CLUSTER_{name.upper().replace('-', '_')}_PORT"


@dataclass(frozen=True)
class NodeConfig:
    """Where one node keeps its state and binaries, which ports it binds and which ranges it routes."""

    home: Path
    cache: Path
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    pod_cidr: str = DEFAULT_POD_CIDR
    service_cidr: str = DEFAULT_SERVICE_CIDR

    @property
    def instance(self) -> str:
        """Six hex digits derived from the state folder: the names this node adds to the host carry it."""
        return hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:6]

    @property
    def bridge(self) -> str:
        """The pods' bridge (at most 15 characters, the kernel's limit)."""
        return f"lkh-{self.instance}"

    @property
    def network_name(self) -> str:
        """The CNI network's name (CNI keeps per-pod results under it in /var/lib/cni)."""
        return f"lakehouse-{self.instance}"

    @property
    def filter_chain(self) -> str:
        """Our own iptables chain: pod traffic may not be forwarded out of the pods' bridge."""
        return f"LAKEHOUSE-{self.instance.upper()}"

    @property
    def node_name(self) -> str:
        return f"lakehouse-{self.instance}"

    @property
    def pod_subnet(self) -> ipaddress.IPv4Network:
        """The node's share of the pod range: its first /24."""
        network = ipaddress.ip_network(self.pod_cidr)
        return next(network.subnets(new_prefix=24)) if network.prefixlen < 24 else network

    @property
    def node_ip(self) -> str:
        """The host's address on the pods' bridge: the API server and kubelet listen here (and on nothing
        the outside reaches), and pods reach them through it."""
        return str(self.pod_subnet.network_address + 1)

    @property
    def api_service_ip(self) -> str:
        return str(ipaddress.ip_network(self.service_cidr).network_address + 1)

    @property
    def dns_ip(self) -> str:
        return str(ipaddress.ip_network(self.service_cidr).network_address + 10)

    @property
    def api_url(self) -> str:
        return f"https://{self.node_ip}:{self.ports['apiserver']}"

    @property
    def kubeconfig(self) -> Path:
        return self.home / "kubeconfig"

    @property
    def containerd_socket(self) -> Path:
        return self.home / "containerd" / "containerd.sock"

    @property
    def run_dir(self) -> Path:
        """Pid files."""
        return self.home / "run"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def save(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        data = {"ports": self.ports, "pod_cidr": self.pod_cidr, "service_cidr": self.service_cidr}
        (self.home / CONFIG_FILE).write_text(json.dumps(data, indent=2) + "\n")

    def to_dict(self) -> dict:
        return {**asdict(self), "home": str(self.home), "cache": str(self.cache)}


def _cidr(value: str, what: str) -> str:
    try:
        network = ipaddress.ip_network(value)
    except ValueError:
        raise NodeConfigError(f"{what}={value!r} is not an IPv4 network such as 10.244.0.0/16") from None
    if network.version != 4 or network.prefixlen > 24 or not network.is_private:
        raise NodeConfigError(
            f"{what}={value!r}: use a private IPv4 range of /24 or larger, e.g. 10.244.0.0/16"
        )
    return str(network)


def load_config(
    home: Path | None = None,
    ports: Mapping[str, int] | None = None,
    environ: Mapping[str, str] | None = None,
) -> NodeConfig:
    """The node's configuration: options, else LAKEHOUSE_CLUSTER_* variables, else what the first `up` saved
    under the state folder, else the defaults.

    Args:
        home: state folder (LAKEHOUSE_CLUSTER_HOME; default `.lakehouse/cluster/` of the repository).
        ports: ports by name (keys of `DEFAULT_PORTS`).
        environ: the environment to read (default: this process's).

    Raises:
        NodeConfigError: a port or range is malformed or two ports are the same.
    """
    env = os.environ if environ is None else environ
    home = Path(home or env.get("LAKEHOUSE_CLUSTER_HOME") or REPO_ROOT / ".lakehouse" / "cluster").absolute()
    cache = Path(env.get("LAKEHOUSE_NODE_CACHE") or REPO_ROOT / ".cache" / "node").absolute()
    saved: dict = {}
    if (home / CONFIG_FILE).exists():
        saved = json.loads((home / CONFIG_FILE).read_text())
    chosen = dict(DEFAULT_PORTS) | saved.get("ports", {})
    for name in DEFAULT_PORTS:
        raw = env.get(port_variable(name))
        if raw is not None:
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise NodeConfigError(f"{port_variable(name)}={raw!r} is not a TCP port (1-65535)")
            chosen[name] = int(raw)
    for name, value in (ports or {}).items():
        if name not in DEFAULT_PORTS:
            raise NodeConfigError(f"unknown port {name!r}: the ports are {', '.join(DEFAULT_PORTS)}")
        chosen[name] = int(value)
    if len(set(chosen.values())) != len(chosen):
        raise NodeConfigError(f"two of the node's ports are the same: {chosen}")
    pod_cidr = env.get("LAKEHOUSE_CLUSTER_POD_CIDR") or saved.get("pod_cidr", DEFAULT_POD_CIDR)
    service_cidr = env.get("LAKEHOUSE_CLUSTER_SERVICE_CIDR") or saved.get(
        "service_cidr", DEFAULT_SERVICE_CIDR
    )
    pod = _cidr(pod_cidr, "LAKEHOUSE_CLUSTER_POD_CIDR")
    service = _cidr(service_cidr, "LAKEHOUSE_CLUSTER_SERVICE_CIDR")
    if ipaddress.ip_network(pod).overlaps(ipaddress.ip_network(service)):
        raise NodeConfigError(
            f"the pod range {pod} and the service range {service} overlap: choose apart ones"
        )
    return NodeConfig(home=home, cache=cache, ports=chosen, pod_cidr=pod, service_cidr=service)
