"""Ask the cluster's DNS one question over UDP: does it answer for the API server's Service?"""

from __future__ import annotations

import secrets
import socket
import struct


def _query(name: str, ident: int) -> bytes:
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.rstrip(".").split("."))
    return header + labels + b"\0" + struct.pack("!HH", 1, 1)


def answers(server: str, name: str, port: int = 53, timeout: float = 1.0) -> bool:
    """True when `server` answers an A query for `name` with no error and at least one record.

    The server is the cluster's DNS Service address: kube-proxy's rules carry the query to the CoreDNS pod
    on the node's bridge, so nothing leaves the machine.
    """
    ident = secrets.randbelow(1 << 16)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(_query(name, ident), (server, port))
            reply, _ = sock.recvfrom(512)
        except OSError:
            return False
    if len(reply) < 12:
        return False
    got_ident, flags, _, answer_count, _, _ = struct.unpack("!HHHHHH", reply[:12])
    return got_ident == ident and flags & 0x000F == 0 and answer_count > 0
