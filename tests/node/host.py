"""What a node may change on the host, captured before `up` and compared after `down`."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from infrastructure.node.network import IPTABLES, KUBELET_SYSCTLS, NODE_SYSCTLS, TABLES, read_sysctl


def _lines(command: list[str]) -> list[str]:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def _iptables(tool: str, table: str) -> list[str]:
    """Chains and rules of one table (packet counters dropped)."""
    return [line.split(" [")[0] for line in _lines([f"{tool}-save", "-t", table]) if line[0] in ":-"]


@dataclass(frozen=True)
class HostSnapshot:
    """The host's network namespaces, links, routes, iptables, mounts and the sysctls a node touches."""

    netns: frozenset[str]
    links: frozenset[str]
    routes: frozenset[str]
    iptables: frozenset[str]
    mounts: frozenset[str]
    sysctls: tuple[tuple[str, str | None], ...]
    default_route: tuple[str, ...]
    eth0: tuple[str, ...]

    @classmethod
    def take(cls) -> HostSnapshot:
        links = [line.split(":")[1].strip().split("@")[0] for line in _lines(["ip", "-o", "link"])]
        rules = [
            f"{tool} {table} {line}"
            for tool in IPTABLES
            for table in TABLES
            for line in _iptables(tool, table)
        ]
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        eth0 = _lines(["ip", "-br", "addr", "show", "dev", "eth0"]) + _lines(
            ["ip", "-br", "link", "show", "eth0"]
        )
        return cls(
            netns=frozenset(line.split()[0] for line in _lines(["ip", "netns", "list"])),
            links=frozenset(links),
            routes=frozenset(_lines(["ip", "route", "show", "table", "all"])),
            iptables=frozenset(rules),
            mounts=frozenset(mounts),
            sysctls=tuple((name, read_sysctl(name)) for name in (*NODE_SYSCTLS, *KUBELET_SYSCTLS)),
            default_route=tuple(_lines(["ip", "route", "show", "default"])),
            eth0=tuple(eth0),
        )

    def added_since(self, before: HostSnapshot) -> dict[str, list[str]]:
        """What exists now and did not before, by kind (empty lists when nothing was left behind)."""
        return {
            "network namespaces": sorted(self.netns - before.netns),
            "links": sorted(self.links - before.links),
            "routes": sorted(self.routes - before.routes),
            "iptables chains and rules": sorted(self.iptables - before.iptables),
            "mounts": sorted(self.mounts - before.mounts),
        }
