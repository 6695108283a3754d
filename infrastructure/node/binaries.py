"""Build once into `.cache/` every program a node runs: Kubernetes, containerd, runc, CNI plugins, CoreDNS."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infrastructure.apiserver.build import KUBERNETES_VERSION, BuildError, build_kubernetes
from infrastructure.local.builds import go_install
from infrastructure.local.service import ServiceError, apt_install, install_debian_package

Log = Callable[[str], None]

CONTAINERD_MODULE, CONTAINERD_VERSION = "github.com/containerd/containerd/v2", "v2.4.2"
RUNC_MODULE, RUNC_VERSION = "github.com/opencontainers/runc", "v1.5.3"
CNI_MODULE, CNI_VERSION = "github.com/containernetworking/plugins", "v1.10.0"
COREDNS_MODULE, COREDNS_VERSION = "github.com/coredns/coredns", "v1.13.1"
#: etcd new enough for the API server's watch progress requests (Debian's 3.4.23 is not: clients' watch
#: streams ended, and Argo, KFP and KServe saw each change tens of seconds late).
ETCD_MODULE, ETCD_VERSION = "go.etcd.io/etcd/server/v3", "v3.6.16"
#: The plugins the node's network uses, by package under the CNI module.
CNI_PLUGINS = ("main/bridge", "main/loopback", "ipam/host-local", "meta/portmap")


@dataclass(frozen=True)
class NodeBinaries:
    """Paths of every program a node runs; `bin_dir` holds links to all of them (containerd finds its shim
    and runc there), `cni_dir` the CNI plugins."""

    kubernetes: dict[str, Path]
    containerd: Path
    ctr: Path
    shim: Path
    runc: Path
    coredns: Path
    etcd: Path
    bin_dir: Path
    cni_dir: Path

    def __getitem__(self, name: str) -> Path:
        return self.kubernetes[name]


def _link_all(folder: Path, binaries: list[Path]) -> Path:
    """A folder of symbolic links to `binaries` (rewritten when one points elsewhere)."""
    folder.mkdir(parents=True, exist_ok=True)
    for binary in binaries:
        link = folder / binary.name
        if link.is_symlink() and Path(os.readlink(link)) == binary:
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(binary)
    return folder


def _runc_prerequisites(log: Log) -> None:
    """runc links libseccomp through cgo: its headers and pkg-config must be installed."""
    install_debian_package("pkg-config", "pkg-config", log)

    def found() -> bool:
        return subprocess.run(["pkg-config", "--exists", "libseccomp"], check=False).returncode == 0

    if not found():
        if os.geteuid() != 0:
            raise ServiceError("libseccomp's headers are missing: run `apt-get install -y libseccomp-dev`")
        apt_install("libseccomp-dev", found, log)


def build_runc(cache: Path, log: Log = print) -> Path:
    """runc alone, built once like the rest (BuildKit's OCI worker runs it too).

    Raises:
        BuildError: libseccomp's headers or Go are missing, or the build failed (named).
    """
    try:
        _runc_prerequisites(log)
        logs = cache / "build.log"
        return go_install(RUNC_MODULE, RUNC_VERSION, cache, logs, log, tags=("seccomp",), cgo=True)
    except ServiceError as exc:
        raise BuildError(str(exc)) from None


def build_all(cache: Path, log: Log = print) -> NodeBinaries:
    """Every binary of the node, each built once (version-keyed folders under `cache`, never rebuilt).

    Cold, on two cores: the six Kubernetes binaries ~10 min (one `go build`), runc + CNI + containerd ~4 min.

    Raises:
        BuildError: a build failed or a prerequisite (Go, a Debian package) is missing (named).
    """
    logs = cache / "build.log"
    try:
        kubernetes = build_kubernetes(KUBERNETES_VERSION, log=log)
        etcd = go_install(
            ETCD_MODULE, ETCD_VERSION, cache, logs, log, main="etcd=go.etcd.io/etcd/server/v3/etcdmain"
        )
        _runc_prerequisites(log)
        runc = go_install(RUNC_MODULE, RUNC_VERSION, cache, logs, log, tags=("seccomp",), cgo=True)
        cni = [
            go_install(f"{CNI_MODULE}/plugins/{plugin}", CNI_VERSION, cache, logs, log)
            for plugin in CNI_PLUGINS
        ]
        containerd = go_install(
            f"{CONTAINERD_MODULE}/cmd/containerd",
            CONTAINERD_VERSION,
            cache,
            logs,
            log,
            tags=("no_btrfs",),
            cgo=True,
        )
        ctr = go_install(f"{CONTAINERD_MODULE}/cmd/ctr", CONTAINERD_VERSION, cache, logs, log)
        shim = go_install(
            f"{CONTAINERD_MODULE}/cmd/containerd-shim-runc-v2", CONTAINERD_VERSION, cache, logs, log
        )
        coredns = go_install(COREDNS_MODULE, COREDNS_VERSION, cache, logs, log)
    except ServiceError as exc:
        raise BuildError(str(exc)) from None
    programs = [*kubernetes.values(), containerd, ctr, shim, runc, coredns]
    bin_dir = _link_all(cache / "bin", programs)
    cni_dir = _link_all(cache / f"cni-{CNI_VERSION}", cni)
    return NodeBinaries(kubernetes, containerd, ctr, shim, runc, coredns, etcd, bin_dir, cni_dir)


#: Host programs a node uses: binary -> the Debian package that brings it.
HOST_TOOLS = {
    "iptables": "iptables",
    "ip6tables": "iptables",
    "conntrack": "conntrack",
    "umoci": "umoci",
    "gcc": "gcc",
    "tar": "tar",
    # a static busybox: the `localhost/busybox` image (a dynamic one from package busybox is left alone)
    "busybox": "busybox-static",
}


def install_host_tools(log: Log) -> None:
    """Install the Debian packages of `HOST_TOOLS` that are missing (as root; else name the command).

    Raises:
        BuildError: a tool is missing and cannot be installed here.
    """
    for binary, package in HOST_TOOLS.items():
        try:
            install_debian_package(binary, package, log)
        except ServiceError as exc:
            raise BuildError(str(exc)) from None
