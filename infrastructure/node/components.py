"""The node's programs: for each, its configuration files, its command line and how to tell it is healthy."""

from __future__ import annotations

import json
import os
import secrets
import ssl
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from infrastructure.node.binaries import NodeBinaries
from infrastructure.node.config import CLUSTER_DOMAIN, NodeConfig
from infrastructure.node.images import PAUSE_IMAGE

ISSUER = "https://kubernetes.default.svc.cluster.local"
#: Who each component is to the API server (bootstrap RBAC and the Node authorizer know these names).
IDENTITIES = {
    "admin": ("admin", "system:masters"),
    "kube-controller-manager": ("system:kube-controller-manager", ""),
    "kube-scheduler": ("system:kube-scheduler", ""),
    "kube-proxy": ("system:kube-proxy", ""),
}


@dataclass
class Component:
    """One program of the node: `healthy()` is polled after start until it answers."""

    name: str
    command: list[str]
    healthy: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    #: seconds between SIGTERM and SIGKILL at `down`
    grace: float = 20.0


def _get(url: str, token: str | None = None, ca: Path | None = None) -> bool:
    context = None
    if url.startswith("https"):
        context = ssl.create_default_context(cafile=str(ca)) if ca else ssl._create_unverified_context()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(
        urllib.request.Request(url, headers=headers), timeout=2, context=context
    ) as r:
        return r.status == 200


def tokens(config: NodeConfig) -> dict[str, str]:
    """One bearer token per identity (the API server's token file), written once and kept across `up`s."""
    path = config.home / "pki" / "tokens.json"
    if path.exists():
        return json.loads(path.read_text())
    users = [*IDENTITIES, "kubelet"]
    values = {name: secrets.token_urlsafe(24) for name in users}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def _token_file(config: NodeConfig, values: dict[str, str]) -> Path:
    identities = {**IDENTITIES, "kubelet": (f"system:node:{config.node_name}", "system:nodes")}
    lines = [f'{values[key]},{user},{user},"{group}"' for key, (user, group) in identities.items()]
    path = config.home / "pki" / "tokens.csv"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def kubeconfig(config: NodeConfig, token: str, path: Path) -> Path:
    """A kubeconfig for the node's API server with `token`, trusting the node's CA."""
    data = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": config.node_name,
                "cluster": {
                    "server": config.api_url,
                    "certificate-authority": str(config.home / "pki" / "ca.crt"),
                },
            }
        ],
        "users": [{"name": "user", "user": {"token": token}}],
        "contexts": [{"name": config.node_name, "context": {"cluster": config.node_name, "user": "user"}}],
        "current-context": config.node_name,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def containerd_config(config: NodeConfig, binaries: NodeBinaries) -> Path:
    """containerd's configuration: every path under the state folder, the CRI with our CNI network, runc with
    cgroupfs, the pinned sandbox image, and `restrict_oom_score_adj` (this host lacks CAP_SYS_RESOURCE)."""
    home = config.home / "containerd"
    cri = 'plugins."io.containerd.cri.v1.runtime"'
    text = f"""version = 3
root = "{home / "root"}"
state = "{home / "state"}"

[grpc]
  address = "{config.containerd_socket}"

[ttrpc]
  address = "{config.containerd_socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{home / "opt"}"

[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "{PAUSE_IMAGE}"

[{cri}]
  restrict_oom_score_adj = true

[{cri}.cni]
  bin_dirs = ["{binaries.cni_dir}"]
  conf_dir = "{config.home / "cni" / "net.d"}"

[{cri}.containerd]
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  BinaryName = "{binaries.runc}"
  Root = "{home / "runc"}"
  SystemdCgroup = false
"""
    return _write(home / "config.toml", text)


def cni_config(config: NodeConfig) -> Path:
    """The pods' network: our bridge (hairpin on, so a pod reaches itself through a Service), addresses from
    the node's /24, no masquerading (nothing leaves the machine)."""
    network = {
        "cniVersion": "1.0.0",
        "name": config.network_name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": config.bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(config.pod_subnet), "gateway": config.node_ip}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(config.home / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return _write(config.home / "cni" / "net.d" / "10-lakehouse.conflist", json.dumps(network, indent=2))


def kubelet_config(config: NodeConfig) -> Path:
    pki = config.home / "pki"
    data = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": config.node_ip,
        "port": config.ports["kubelet"],
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": config.ports["kubelet-healthz"],
        "tlsCertFile": str(pki / "kubelet.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet.key"),
        # only a client with a certificate of the node's CA (the API server) may call kubelet
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "AlwaysAllow"},
        # this host has cgroup v1 only, and swap may be on
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{config.containerd_socket}",
        "clusterDNS": [config.dns_ip],
        "clusterDomain": CLUSTER_DOMAIN,
        "podLogsDir": str(config.home / "kubelet" / "pod-logs"),
        "volumePluginDir": str(config.home / "kubelet" / "volume-plugins"),
        # absolute floors: this node shares the host's disk, where 5% of a large disk is often all that is
        # free while builds run, and a node under disk pressure takes no pod
        "evictionHard": {"memory.available": "200Mi", "nodefs.available": "2Gi", "imagefs.available": "2Gi"},
        "imageGCHighThresholdPercent": 95,
        "imageGCLowThresholdPercent": 90,
        "serializeImagePulls": False,
    }
    return _write(config.home / "kubelet" / "config.yaml", yaml.safe_dump(data))


def kube_proxy_config(config: NodeConfig, kubeconfig_path: Path) -> Path:
    data = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig_path)},
        "hostnameOverride": config.node_name,
        "mode": "iptables",
        "clusterCIDR": config.pod_cidr,
        "bindAddress": config.node_ip,
        "healthzBindAddress": f"127.0.0.1:{config.ports['kube-proxy-healthz']}",
        "metricsBindAddress": f"127.0.0.1:{config.ports['kube-proxy-metrics']}",
        # leave the host's conntrack sysctls alone
        "conntrack": {"maxPerCore": 0, "min": 0},
        # NodePorts answer on the node's bridge address only, never on the host's own interfaces
        "nodePortAddresses": [f"{config.node_ip}/32"],
        "iptables": {"localhostNodePorts": False},
    }
    return _write(config.home / "kube-proxy" / "config.yaml", yaml.safe_dump(data))


def components(config: NodeConfig, binaries: NodeBinaries) -> list[Component]:
    """Every program of the node in start order (`down` stops them in reverse), configuration written."""
    home, ports, pki = config.home, config.ports, config.home / "pki"
    values = tokens(config)
    token_file = _token_file(config, values)
    configs = {
        name: kubeconfig(config, values[name], home / "kubeconfigs" / f"{name}.yaml") for name in values
    }
    kubeconfig(config, values["admin"], config.kubeconfig)
    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
    path = f"{binaries.bin_dir}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    local = "https://127.0.0.1"
    return [
        Component(
            "etcd",
            [str(binaries.etcd), "--name", "node", "--data-dir", str(home / "etcd")]
            + ["--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url]
            + ["--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url]
            + ["--initial-cluster", f"node={peer_url}", "--log-level", "warn"],
            lambda: _get(f"{etcd_url}/health"),
        ),
        Component(
            "kube-apiserver",
            [
                str(binaries["kube-apiserver"]),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={config.node_ip}",
                f"--advertise-address={config.node_ip}",
                f"--secure-port={ports['apiserver']}",
                f"--cert-dir={home / 'kube-apiserver'}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                f"--kubelet-certificate-authority={pki / 'ca.crt'}",
                # the node's name does not resolve here: reach kubelet (logs, exec) by its address
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                f"--service-account-issuer={ISSUER}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={config.service_cidr}",
                f"--token-auth-file={token_file}",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                "--profiling=false",
            ],
            lambda: _get(f"{config.api_url}/readyz", values["admin"], pki / "ca.crt"),
        ),
        Component(
            "kube-controller-manager",
            [
                str(binaries["kube-controller-manager"]),
                f"--kubeconfig={configs['kube-controller-manager']}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['controller-manager']}",
                f"--cert-dir={home / 'kube-controller-manager'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                "--use-service-account-credentials=true",
                f"--service-cluster-ip-range={config.service_cidr}",
                "--leader-elect=false",
                "--profiling=false",
            ],
            lambda: _get(f"{local}:{ports['controller-manager']}/healthz"),
        ),
        Component(
            "kube-scheduler",
            [
                str(binaries["kube-scheduler"]),
                f"--kubeconfig={configs['kube-scheduler']}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['scheduler']}",
                f"--cert-dir={home / 'kube-scheduler'}",
                "--leader-elect=false",
                "--profiling=false",
            ],
            lambda: _get(f"{local}:{ports['scheduler']}/healthz"),
        ),
        Component(
            "containerd",
            [str(binaries.containerd), "--config", str(containerd_config(config, binaries))],
            lambda: config.containerd_socket.is_socket(),
            env={"PATH": path},
        ),
        Component(
            "kubelet",
            [
                str(binaries["kubelet"]),
                f"--config={kubelet_config(config)}",
                f"--kubeconfig={configs['kubelet']}",
                f"--root-dir={home / 'kubelet' / 'root'}",
                f"--cert-dir={home / 'kubelet' / 'pki'}",
                f"--node-ip={config.node_ip}",
                f"--hostname-override={config.node_name}",
            ],
            lambda: _get(f"http://127.0.0.1:{ports['kubelet-healthz']}/healthz"),
            env={"PATH": path},
        ),
        Component(
            "kube-proxy",
            [str(binaries["kube-proxy"]), f"--config={kube_proxy_config(config, configs['kube-proxy'])}"],
            lambda: _get(f"http://127.0.0.1:{ports['kube-proxy-healthz']}/healthz"),
            env={"PATH": path},
        ),
    ]
