"""The one free-port helper: distinct ports nothing listens on, none asked to be avoided, below the kernel's
ephemeral range."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from components.core.ports import PRIVATE_PORTS_FROM, NoFreePort, free_port, free_ports, port_in_use


def test_free_ports_are_distinct_unused_and_below_the_ephemeral_range() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = free_ports(20)
    assert len(set(ports)) == 20
    assert all(PRIVATE_PORTS_FROM <= port < max(low, PRIVATE_PORTS_FROM + 1000) for port in ports)
    assert not any(port_in_use(port) for port in ports)


def test_a_listening_port_is_in_use_and_never_handed_out() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    with socket.socket() as server:
        server.bind(("127.0.0.1", free_port()))
        server.listen()
        taken = server.getsockname()[1]
        assert port_in_use(taken)
        # every other candidate avoided: only the taken port is left, and it is not handed out
        others = set(range(PRIVATE_PORTS_FROM, max(low, PRIVATE_PORTS_FROM + 1000))) - {taken}
        with pytest.raises(NoFreePort, match="fewer than 1 free loopback ports"):
            free_ports(1, avoid=others)
