"""A small HTTP/1.1 load client for the serving benchmarks: keep-alive connections, one request in flight.

It is asyncio and raw sockets on purpose: on a 2-core machine the client shares the cores with the
servers it measures, and httpx spends about as much CPU per request as the server does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    """Latencies (ms) of the answered requests, errors, and the wall time of the whole run."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    @property
    def throughput(self) -> float:
        """Answered requests per second."""
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _request(host: str, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one response; returns its status code (the body is read and dropped)."""
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def _run(
    host: str, port: int, path: str, body: Callable[[int], bytes], requests: int, clients: int
) -> LoadResult:
    result = LoadResult()
    next_index = iter(range(requests))

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for index in next_index:
                started = time.perf_counter()
                writer.write(_request(host, path, body(index)))
                try:
                    status = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError):
                    result.errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                if status == 200:
                    result.latencies_ms.append((time.perf_counter() - started) * 1000)
                else:
                    result.errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    result.seconds = time.perf_counter() - started
    return result


def run_load(
    url: str, path: str, body: Callable[[int], bytes], requests: int, clients: int = 1
) -> LoadResult:
    """Send `requests` POSTs to `url + path` over `clients` keep-alive connections, one in flight each.

    Args:
        url: `http://host:port` of the server.
        path: the request path.
        body: the JSON body of the i-th request.
        requests: how many requests in all.
        clients: concurrent connections.
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return asyncio.run(_run(host, int(port), path, body, requests, clients))
