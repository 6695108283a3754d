"""Start a single-node cluster (`up`), report on it (`status`) and remove every trace of it (`down`)."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import signal
import string
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from infrastructure.apiserver.build import BuildError, binary_path
from infrastructure.local.builds import cache_lock
from infrastructure.local.procs import PidFile, ProcessRecord, log_tail, spawn, start_ticks, stop, wait_until
from infrastructure.node import crds, dns, network, storage
from infrastructure.node.binaries import NodeBinaries, build_all, install_host_tools
from infrastructure.node.components import Component, cni_config, components
from infrastructure.node.config import CLUSTER_DOMAIN, NodeConfig
from infrastructure.node.images import (
    BUSYBOX_IMAGE,
    COREDNS_IMAGE,
    PAUSE_IMAGE,
    ImageSpec,
    build_pause,
    busybox_spec,
    import_images,
    is_static,
    pack,
)
from infrastructure.node.pki import ensure_pki
from infrastructure.node.prerequisites import problems

Log = Callable[[str], None]

COMPONENT_NAMES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "containerd",
    "kubelet",
    "kube-proxy",
)
START_TIMEOUT = float(os.environ.get("LAKEHOUSE_CLUSTER_START_TIMEOUT", "180"))
COREDNS_MANIFEST = Path(__file__).with_name("coredns.yaml")


class NodeUnavailable(RuntimeError):
    """The host cannot run a node (not root, no cgroups, a port taken...); the message lists each fix."""


class NodeStartFailed(RuntimeError):
    """A program did not become healthy; the message carries its log's last lines."""


def running(config: NodeConfig) -> dict[str, ProcessRecord]:
    """The node's programs that are alive now (by pid file and kernel start time)."""
    found = {}
    for name in COMPONENT_NAMES:
        record = PidFile(config.run_dir, name).alive()
        if record is not None:
            found[name] = record
    return found


def kubectl(
    config: NodeConfig, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess:
    """Our kubectl with the admin kubeconfig; raises NodeStartFailed (with output) if `check` and it fails."""
    command = [str(kubectl_path()), "--kubeconfig", str(config.kubeconfig), *args]
    done = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise NodeStartFailed(f"`kubectl {' '.join(args)}` failed: {done.stderr.strip()}")
    return done


def settled(config: NodeConfig, workloads: Sequence[dict] = (), namespace: str = "lakehouse") -> bool:
    """Every Job complete and every Deployment's and StatefulSet's replicas ready: of `workloads` (rendered
    objects, each of which must exist; `namespace` where they name none), or of all there are."""
    listed = kubectl(config, "get", "jobs,deployments,statefulsets", "-A", "-o", "json", check=False)
    if listed.returncode:
        return False

    def key(item: dict) -> tuple[str, str, str]:
        return item["kind"], item["metadata"].get("namespace", namespace), item["metadata"]["name"]

    items = {key(item): item for item in json.loads(listed.stdout)["items"]}
    wanted = [key(workload) for workload in workloads] or list(items)
    for found in (items.get(k) for k in wanted):
        if found is None:
            return False
        status = found.get("status", {})
        if found["kind"] == "Job":
            done = [c for c in status.get("conditions", []) if c["type"] == "Complete"]
            if not (done and done[0]["status"] == "True"):
                return False
        elif status.get("readyReplicas", 0) < found["spec"].get("replicas", 1):
            return False
    return True


def node_ready(config: NodeConfig, since: float = 0.0) -> bool:
    """True when the node's Ready condition is True, reported by kubelet at or after `since` (epoch seconds;
    after a restart the API server still holds the last run's condition for a while)."""
    condition = ".status.conditions[?(@.type=='Ready')]"
    jsonpath = f"jsonpath={{{condition}.status}} {{{condition}.lastHeartbeatTime}}"
    done = kubectl(config, "get", "node", config.node_name, "-o", jsonpath, check=False, timeout=10)
    words = done.stdout.split()
    if done.returncode != 0 or len(words) != 2 or words[0] != "True":
        return False
    heartbeat = datetime.datetime.fromisoformat(words[1].replace("Z", "+00:00")).timestamp()
    return heartbeat >= int(since)


def _start(config: NodeConfig, component: Component, log: Log) -> ProcessRecord:
    log_path = config.logs / f"{component.name}.log"
    pid = spawn(component.command, log_path, env={**os.environ, **component.env}, cwd=config.home)
    record = ProcessRecord(pid, start_ticks(pid) or 0, 0, component.command)
    PidFile(config.run_dir, component.name).write(record)
    alive = lambda: start_ticks(pid) == record.start_ticks  # noqa: E731
    started = time.monotonic()
    if not wait_until(component.healthy, START_TIMEOUT, alive, interval=0.2):
        state = "exited during start-up" if not alive() else f"was not healthy within {START_TIMEOUT:.0f} s"
        raise NodeStartFailed(f"{component.name} {state}; last lines of {log_path}:\n{log_tail(log_path)}")
    log(f"  {component.name} healthy in {time.monotonic() - started:.1f} s (pid {pid})")
    return record


def _images(config: NodeConfig, binaries: NodeBinaries, log: Log) -> list[Path]:
    pause = build_pause(config.cache, log)
    specs = [
        ImageSpec(PAUSE_IMAGE, {"/pause": pause}, entrypoint=["/pause"]),
        ImageSpec(COREDNS_IMAGE, {"/coredns": binaries.coredns}, entrypoint=["/coredns"]),
    ]
    busybox = shutil.which("busybox")
    if busybox and is_static(Path(busybox)):
        specs.append(busybox_spec(Path(busybox)))
    else:
        log(f"no static busybox here (`apt-get install busybox-static`): no {BUSYBOX_IMAGE} image")
    return [pack(spec, config.cache, log) for spec in specs]


def _wait(what: str, check: Callable[[], bool], timeout: float = START_TIMEOUT) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise NodeStartFailed(f"{what} not within {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - started


def _install_dns(config: NodeConfig, log: Log) -> None:
    manifest = string.Template(COREDNS_MANIFEST.read_text()).substitute(
        DNS_IP=config.dns_ip, IMAGE=COREDNS_IMAGE, DOMAIN=CLUSTER_DOMAIN
    )
    kubectl(config, "apply", "-f", "-", input=manifest)
    name = f"kubernetes.default.svc.{CLUSTER_DOMAIN}"
    waited = _wait(f"CoreDNS answering at {config.dns_ip}", lambda: dns.answers(config.dns_ip, name))
    log(f"  CoreDNS answers at {config.dns_ip} after {waited:.1f} s")


def kubectl_path() -> Path:
    return binary_path(command="kubectl")


def up(config: NodeConfig, log: Log = print) -> bool:
    """Start the node unless it runs; return True when it started something, False when it only checked.

    Raises:
        NodeUnavailable: a prerequisite is missing (nothing was started).
        NodeStartFailed: a program did not start (everything started is stopped and removed again).
        BuildError: a build failed.
    """
    config.home.mkdir(parents=True, exist_ok=True)
    with cache_lock(config.home, "node"):
        alive = running(config)
        if len(alive) == len(COMPONENT_NAMES):
            log(f"the node already runs ({config.home}); nothing started")
            for line in status_lines(config):
                log(line)
            return False
        if alive:
            raise NodeUnavailable(
                f"only part of the node runs ({', '.join(alive)}): run `make cluster-down` first, then `up`"
            )
        found = problems(config)
        if found:
            raise NodeUnavailable("the node cannot start here:\n" + "\n".join(f"  - {p}" for p in found))
        started = time.monotonic()
        install_host_tools(log)
        binaries = build_all(config.cache, log)
        tarballs = _images(config, binaries, log)
        built = time.monotonic()
        config.save()
        for folder in (config.logs, config.run_dir):
            folder.mkdir(parents=True, exist_ok=True)
        ensure_pki(config.home / "pki", config.node_ip, config.api_service_ip, config.node_name)
        try:
            log(f"network: bridge {config.bridge}, pods {config.pod_cidr}, services {config.service_cidr}")
            network.setup(config, log)
            cni_config(config)
            kubelet_started = time.time()
            for component in components(config, binaries):
                if component.name == "kubelet":
                    kubelet_started = time.time()
                _start(config, component, log)
                if component.name == "containerd":
                    import_images(binaries.ctr, config.containerd_socket, tarballs, log)
            ready = _wait("node Ready", lambda: node_ready(config, since=kubelet_started))
            log(f"  node Ready {ready:.1f} s after kube-proxy")
            _install_dns(config, log)
            storage.ensure(config, kubectl, log)
            names = crds.apply(config, kubectl, log)
            listed = lambda: json.loads(kubectl(config, "get", "crd", "-o", "json").stdout)  # noqa: E731
            _wait("custom resource definitions established", lambda: names <= crds.established(listed()))
        except BaseException:
            log("start failed: stopping and removing what was started")
            _down(config, wipe=False, log=log)
            raise
        log(f"the node runs: started in {time.monotonic() - built:.1f} s (builds: {built - started:.1f} s)")
        log(f"  export KUBECONFIG={config.kubeconfig}; kubectl get nodes")
    return True


def _ctr(config: NodeConfig, binaries_dir: Path, *args: str) -> subprocess.CompletedProcess:
    ctr = binaries_dir / "ctr"
    command = [str(ctr), "--address", str(config.containerd_socket), "--namespace", "k8s.io", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def _remove_containers(config: NodeConfig, log: Log) -> tuple[list[str], list[str]]:
    """Kill and delete every container containerd runs for the node; return their ids and their network
    namespaces (`down` deletes those once nothing holds them)."""
    bin_dir = config.cache / "bin"
    ids = _ctr(config, bin_dir, "containers", "list", "--quiet").stdout.split()
    namespaces = []
    for container in ids:
        info = _ctr(config, bin_dir, "containers", "info", container)
        with contextlib.suppress(ValueError, KeyError, TypeError):
            for entry in json.loads(info.stdout)["Spec"]["linux"]["namespaces"]:
                if entry.get("type") == "network" and entry.get("path"):
                    namespaces.append(entry["path"])
    if not ids:
        return [], []
    started = time.monotonic()
    for container in ids:
        _ctr(config, bin_dir, "tasks", "kill", "--all", "--signal", "SIGKILL", container)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        tasks = _ctr(config, bin_dir, "tasks", "list").stdout.splitlines()[1:]
        if not any(line.split()[-1] == "RUNNING" for line in tasks if line.split()):
            break
        time.sleep(0.2)
    for container in ids:
        _ctr(config, bin_dir, "tasks", "delete", "--force", container)
        _ctr(config, bin_dir, "containers", "delete", container)
    log(f"  removed {len(ids)} containers ({time.monotonic() - started:.1f} s)")
    return ids, sorted(set(namespaces))


def _stragglers(config: NodeConfig) -> list[int]:
    """Processes of this node no pid file names: containerd's shims started with our socket, and every
    process below them (the containers' processes). Nothing else: another node's containers are not ours."""
    socket = str(config.containerd_socket).encode()
    parents: dict[int, int] = {}
    shims = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(stat[stat.rindex(")") + 2 :].split()[1])
        if socket in command:
            shims.add(pid)
    found, frontier = set(shims), list(shims)
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return sorted(found)


def _other_node_pids(config: NodeConfig, ours: set[int]) -> list[int]:
    """kubelet or kube-proxy processes that are not this node's: another node runs on the machine."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in ours:
            continue
        with contextlib.suppress(OSError):
            program = (entry / "cmdline").read_bytes().split(b"\0")[0]
            if program.endswith((b"/kubelet", b"/kube-proxy")):
                found.append(int(entry.name))
    return found


def _unmount_all(home: Path, log: Log) -> None:
    """Unmount everything mounted under `home` (deepest first)."""
    prefix = str(home.resolve())
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            mounts.append(point)
    if mounts:
        log(f"  unmounting {len(mounts)} mounts under {prefix}")
    for point in sorted(set(mounts), key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _remove_cgroups(log: Log) -> None:
    """Remove the empty `kubepods` cgroup trees kubelet created (deepest first; a busy one stays)."""
    root = Path("/sys/fs/cgroup")
    for tree in sorted(root.glob("*/kubepods*")) + sorted(root.glob("kubepods*")):
        if not tree.is_dir():
            continue
        folders = sorted((p for p in tree.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for folder in [*folders, tree]:
            with contextlib.suppress(OSError):
                folder.rmdir()


def _remove_host_files(config: NodeConfig, containers: list[str]) -> None:
    """What kubelet and CNI write outside the state folder: CNI's cached results of our network and of the
    loopback of our containers, the links kubelet makes in /var/log/containers to our pods' logs."""
    results = Path("/var/lib/cni/results")
    for cached in results.glob(f"{config.network_name}-*"):
        cached.unlink(missing_ok=True)
    for container in containers:
        (results / f"cni-loopback-{container}-lo").unlink(missing_ok=True)
    containers = Path("/var/log/containers")
    if containers.is_dir():
        for link in containers.iterdir():
            with contextlib.suppress(OSError):
                if link.is_symlink() and os.readlink(link).startswith(str(config.home)):
                    link.unlink()
    shutil.rmtree(config.home / "cni" / "ipam", ignore_errors=True)


def _down(config: NodeConfig, wipe: bool, log: Log) -> None:
    records = {name: PidFile(config.run_dir, name).alive() for name in COMPONENT_NAMES}
    timings = {}

    def halt(name: str, grace: float = 20.0) -> None:
        record = records.get(name)
        if record is not None:
            started = time.monotonic()
            outcome = stop(record, signal.SIGTERM, grace=grace)
            timings[name] = time.monotonic() - started
            log(f"  {name} {outcome} (pid {record.pid}, {timings[name]:.1f} s)")
        PidFile(config.run_dir, name).remove()

    for name in ("kubelet", "kube-proxy", "kube-scheduler", "kube-controller-manager"):
        halt(name)
    # the containers' processes, waited for below: once its shim is gone a killed process is no straggler,
    # yet a large one (a JVM with its heap) may take a while to exit
    doomed = {pid: start_ticks(pid) for pid in _stragglers(config)}
    containers, namespaces = [], []
    if records.get("containerd") is not None:
        containers, namespaces = _remove_containers(config, log)
    halt("containerd")
    leftovers = {pid: start_ticks(pid) for pid in _stragglers(config)}
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError):
            log(f"  killing leftover process {pid} of the node")
            os.kill(pid, signal.SIGKILL)
    doomed |= leftovers
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(
        ticks is not None and start_ticks(pid) == ticks for pid, ticks in doomed.items()
    ):
        time.sleep(0.1)
    halt("kube-apiserver")
    halt("etcd")
    others = _other_node_pids(config, {record.pid for record in records.values() if record})
    if others:
        log(f"  another node runs here (pids {others}): its kubelet and kube-proxy chains and cgroups stay")
    _unmount_all(config.home, log)
    network.delete_netns(namespaces, log)
    started = time.monotonic()
    kube_proxy = config.cache / "bin" / "kube-proxy"
    if kube_proxy.exists() and not others:
        subprocess.run([str(kube_proxy), "--cleanup"], capture_output=True, timeout=60, check=False)
    if not others:
        _remove_cgroups(log)
    _remove_host_files(config, containers)
    network.teardown(config, log, foreign=not others)
    log(f"  network and host files cleaned ({time.monotonic() - started:.1f} s)")
    if wipe:
        log(f"  deleting the state folder {config.home}")
        shutil.rmtree(config.home, ignore_errors=True)


def down(config: NodeConfig, wipe: bool = False, log: Log = print) -> None:
    """Stop every program of the node by pid and remove what it added to the host: containers, mounts under
    the state folder, network namespaces, the bridge and its routes, iptables chains, sysctls. With `wipe`,
    the state folder (etcd, volumes, certificates) goes too; without, a later `up` finds it again."""
    if not config.home.exists():
        log(f"no node state at {config.home}: nothing to stop")
        return
    started = time.monotonic()
    with cache_lock(config.home, "node"):
        _down(config, wipe, log)
    log(f"the node is down ({time.monotonic() - started:.1f} s)")


def status_lines(config: NodeConfig) -> list[str]:
    alive = running(config)
    lines = [f"node {config.node_name} (state {config.home})"]
    for name in COMPONENT_NAMES:
        record = alive.get(name)
        lines.append(f"  {name:<24} {'running, pid ' + str(record.pid) if record else 'not running'}")
    if "kube-apiserver" in alive:
        lines.append(f"  node Ready: {'yes' if node_ready(config) else 'no'}")
        lines.append(f"  export KUBECONFIG={config.kubeconfig}; kubectl get nodes")
    return lines


def status(config: NodeConfig, log: Log = print) -> bool:
    """Print what runs and whether the node is Ready; True when everything runs and the node is Ready."""
    for line in status_lines(config):
        log(line)
    return len(running(config)) == len(COMPONENT_NAMES) and node_ready(config)


__all__ = ["BuildError", "NodeStartFailed", "NodeUnavailable", "down", "status", "up"]
