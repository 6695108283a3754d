"""The node's network on the host: bridge, routes, sysctls and iptables; added by `up`, removed by `down`.

The host's own interfaces and default route are never touched. The pod and service ranges are routed to the
pods' bridge, so traffic for them that no NAT rule claims stays on this machine; a chain of our own drops
anything the pods would forward out of the bridge.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from infrastructure.node.config import NodeConfig

Log = Callable[[str], None]

#: Kernel settings the node needs (forwarding between pods and services, bridged traffic through iptables).
NODE_SYSCTLS = {"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"}
#: Kernel settings kubelet sets at start; `down` puts back what the host had before.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
#: Chain prefixes of what kubelet, kube-proxy and the CNI portmap plugin add to iptables.
FOREIGN_CHAIN_PREFIXES = ("KUBE-", "CNI-")
TABLES = ("filter", "nat", "mangle")
IPTABLES = ("iptables", "ip6tables")
#: Folders kubelet, containerd, CNI and `ip netns` create on the host; `down` removes those `up` found absent
#: once they are empty again.
HOST_FOLDERS = (
    "/run/containerd/s",
    "/run/containerd",
    "/run/netns",
    "/var/lib/cni/results",
    "/var/lib/cni",
    "/var/log/containers",
    "/var/log/pods",
)
#: The host as `up` first found it: sysctls, which of HOST_FOLDERS existed, which nftables tables existed.
HOST_FILE = "host-before.json"


class NetworkError(RuntimeError):
    """A network change failed; the message names the command and its output."""


def run(command: list[str], check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise NetworkError(f"`{' '.join(command)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name


def read_sysctl(name: str) -> str | None:
    try:
        return _sysctl_path(name).read_text().strip()
    except OSError:
        return None


def nft_tables() -> list[str]:
    """The nftables tables that exist ("ip filter", ...); iptables-nft creates them on first use."""
    if not shutil.which("nft"):
        return []
    return [
        line.removeprefix("table ")
        for line in run(["nft", "list", "tables"], check=False).stdout.splitlines()
    ]


def save_host_state(config: NodeConfig) -> None:
    """Remember, once per node, what `down` must put back: sysctls, absent host folders, absent tables."""
    path = config.home / HOST_FILE
    if path.exists():
        return
    state = {
        "sysctls": {name: read_sysctl(name) for name in [*NODE_SYSCTLS, *KUBELET_SYSCTLS]},
        "absent_folders": [folder for folder in HOST_FOLDERS if not Path(folder).exists()],
        "nft_tables": nft_tables(),
    }
    path.write_text(json.dumps(state, indent=2) + "\n")


def _empty_table(table: str) -> bool:
    """True when an iptables-nft table holds no rule and no chain but the built-in ones."""
    family, name = table.split()
    tool = "iptables" if family == "ip" else "ip6tables"
    lines = run([f"{tool}-save", "-t", name], check=False).stdout.splitlines()
    chains = [line.split()[0][1:] for line in lines if line.startswith(":")]
    builtin = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}
    policies = all(line.split()[1] == "ACCEPT" for line in lines if line.startswith(":"))
    return not any(line.startswith("-A") for line in lines) and set(chains) <= builtin and policies


def restore_host_state(config: NodeConfig, log: Log) -> None:
    """Put back the sysctls saved by `up`; remove the host folders and empty tables it found absent."""
    path = config.home / HOST_FILE
    if not path.exists():
        return
    state = json.loads(path.read_text())
    for name, value in state["sysctls"].items():
        if value is not None and read_sysctl(name) != value:
            log(f"  sysctl {name.replace('/', '.')} = {value} (as before up)")
            _sysctl_path(name).write_text(value)
    for folder in state["absent_folders"]:
        with contextlib.suppress(OSError):
            Path(folder).rmdir()
    if shutil.which("nft"):
        for table in set(nft_tables()) - set(state["nft_tables"]):
            if table.split()[0] in ("ip", "ip6") and _empty_table(table):
                run(["nft", "delete", "table", *table.split()], check=False)
    path.unlink()


def route_owner(cidr: str) -> str | None:
    """The device a route for exactly `cidr` uses, or None."""
    if not shutil.which("ip"):
        return None
    for line in run(["ip", "-4", "route", "show", cidr]).stdout.splitlines():
        words = line.split()
        if words and words[0] == cidr and "dev" in words:
            return words[words.index("dev") + 1]
    return None


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", name], check=False).returncode == 0


def chain_exists(tool: str, table: str, chain: str) -> bool:
    return run([tool, "-w", "-t", table, "-S", chain], check=False).returncode == 0


def kube_proxy_present() -> bool:
    """True when kube-proxy's canary chain exists: some kube-proxy owns this machine's KUBE-* chains."""
    return bool(shutil.which("iptables")) and chain_exists("iptables", "mangle", "KUBE-PROXY-CANARY")


def setup(config: NodeConfig, log: Log) -> None:
    """Create the pods' bridge with the node's address, route both ranges to it, set the sysctls, and add our
    chain. Safe to run again (what exists is left as it is)."""
    bridge, node_ip = config.bridge, config.node_ip
    save_host_state(config)
    if not link_exists(bridge):
        log(f"  bridge {bridge} with {node_ip}/{config.pod_subnet.prefixlen}")
        run(["ip", "link", "add", bridge, "type", "bridge"])
    addresses = run(["ip", "-4", "-o", "addr", "show", "dev", bridge]).stdout
    if f" {node_ip}/" not in addresses:
        run(["ip", "addr", "add", f"{node_ip}/{config.pod_subnet.prefixlen}", "dev", bridge])
    run(["ip", "link", "set", bridge, "up"])
    for cidr in (config.pod_cidr, config.service_cidr):
        if str(config.pod_subnet) != cidr and route_owner(cidr) != bridge:
            log(f"  route {cidr} -> {bridge}")
            run(["ip", "route", "replace", cidr, "dev", bridge])
    for name, value in NODE_SYSCTLS.items():
        if read_sysctl(name) is None and name.startswith("net/bridge"):
            run(["modprobe", "br_netfilter"], check=False)
        if read_sysctl(name) != value:
            _sysctl_path(name).write_text(value)
    chain = config.filter_chain
    if not chain_exists("iptables", "filter", chain):
        run(["iptables", "-w", "-t", "filter", "-N", chain])
        # pods talk to each other and to the host; nothing they send is forwarded anywhere else
        run(["iptables", "-w", "-t", "filter", "-A", chain, "-i", bridge, "-o", bridge, "-j", "RETURN"])
        run(["iptables", "-w", "-t", "filter", "-A", chain, "-i", bridge, "-j", "DROP"])
    jump = ["FORWARD", "-j", chain]
    if run(["iptables", "-w", "-t", "filter", "-C", *jump], check=False).returncode != 0:
        run(["iptables", "-w", "-t", "filter", "-I", *jump])


def _rules(tool: str, table: str) -> list[list[str]]:
    out = run([f"{tool}-save", "-t", table], check=False).stdout
    return [shlex.split(line) for line in out.splitlines() if line.startswith("-A ")]


def remove_chains(config: NodeConfig, log: Log, foreign: bool = True) -> None:
    """Delete every rule jumping to a chain of ours (with `foreign`: also kubelet's, kube-proxy's and CNI's,
    whose names are machine-wide), then those chains."""

    def _ours(chain: str, own_chain: str) -> bool:
        return chain == own_chain or (foreign and chain.startswith(FOREIGN_CHAIN_PREFIXES))

    for tool in IPTABLES:
        for table in TABLES:
            chains = set()
            for rule in _rules(tool, table):
                chain, target = rule[1], rule[rule.index("-j") + 1] if "-j" in rule else ""
                if _ours(chain, config.filter_chain):
                    chains.add(chain)
                elif _ours(target, config.filter_chain):
                    run([tool, "-w", "-t", table, "-D", *rule[1:]], check=False)
            out = run([f"{tool}-save", "-t", table], check=False).stdout
            chains |= {line[1:].split()[0] for line in out.splitlines() if line.startswith(":")}
            chains = {chain for chain in chains if _ours(chain, config.filter_chain)}
            if chains:
                log(f"  {tool} {table}: removing {len(chains)} chains ({', '.join(sorted(chains)[:4])}...)")
            for chain in chains:
                run([tool, "-w", "-t", table, "-F", chain], check=False)
            for chain in chains:
                run([tool, "-w", "-t", table, "-X", chain], check=False)


def teardown(config: NodeConfig, log: Log, foreign: bool = True) -> None:
    """Remove the bridge (its routes go with it), the iptables chains and rules, and restore the sysctls.

    Args:
        foreign: also kubelet's, kube-proxy's and CNI's chains (False while another node of the machine
            runs: they are its chains now).
    """
    for cidr in (config.pod_cidr, config.service_cidr):
        if route_owner(cidr) == config.bridge:
            run(["ip", "route", "del", cidr, "dev", config.bridge], check=False)
    if link_exists(config.bridge):
        log(f"  removing bridge {config.bridge}")
        run(["ip", "link", "del", config.bridge])
    remove_chains(config, log, foreign)
    restore_host_state(config, log)


def delete_netns(paths: list[str], log: Log) -> None:
    """Delete network namespaces by path (the pods' veth pairs go with them)."""
    for path in paths:
        name = Path(path).name
        if Path(path).parent == Path("/var/run/netns") or Path(path).parent == Path("/run/netns"):
            log(f"  removing network namespace {name}")
            with contextlib.suppress(NetworkError):
                run(["ip", "netns", "delete", name])
