"""Run the churn model server: `python -m serving.server [--host H] [--port N]` or in a background process."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from components.settings import REPO_ROOT, SERVED_MODEL_NAME, Settings, get_settings

if TYPE_CHECKING:
    from serving.model import ChurnModel

READY_PATH = "/v2/health/ready"


def build_model(settings: Settings) -> ChurnModel:
    """The loaded `ChurnModel` (champion from MLflow, features from Feast's online store)."""
    from serving.model import ChurnModel

    model = ChurnModel(settings)
    model.load()
    return model


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Load the model and serve it over HTTP (V1 and V2 REST, one worker, no gRPC) until stopped."""
    import kserve
    from threadpoolctl import threadpool_limits

    class _ModelServer(kserve.ModelServer):
        """kserve.ModelServer binds 0.0.0.0; this one binds the configured host."""

        def __init__(self, bind_host: str, **kwargs):
            super().__init__(**kwargs)
            self.bind_host = bind_host

        def setup_event_loop(self) -> None:
            if self._rest_server is not None:
                self._rest_server.config.host = self.bind_host
            super().setup_event_loop()

    model = build_model(settings)
    # one request at a time: OpenMP/BLAS thread pools only add hand-off and spin-wait latency. Limited
    # after loading, once the model's native libraries are loaded and can be found.
    threadpool_limits(limits=1)
    server = _ModelServer(
        bind_host=host or settings.serving_host,
        http_port=port or settings.serving_port,
        workers=1,
        enable_grpc=False,
        enable_latency_logging=False,
    )
    # the server configures logging; per-request access and timing lines cost more than a prediction
    for name in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    server.start([model])


def main(argv: list[str] | None = None) -> None:
    """`python -m serving.server [--profile P] [--host H] [--port N]`; defaults come from the settings."""
    parser = argparse.ArgumentParser(prog="python -m serving.server", description=__doc__)
    parser.add_argument("--profile", help="settings profile (default: $LAKEHOUSE_PROFILE, else local)")
    parser.add_argument("--host", help="address to bind (default: settings.serving_host)")
    parser.add_argument("--port", type=int, help="HTTP port (default: settings.serving_port)")
    args = parser.parse_args(argv)
    serve(get_settings(args.profile), host=args.host, port=args.port)


@dataclass
class RunningServer:
    """A model server started by :func:`start_in_background`; stop it with :meth:`stop`."""

    process: subprocess.Popen
    url: str
    log_path: Path

    def stop(self, timeout: float = 30.0) -> int:
        """Terminate the server process and wait for it; returns its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return self.process.returncode

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_in_background(
    settings: Settings | None = None,
    host: str | None = None,
    port: int | None = None,
    timeout: float = 300.0,
    log_path: Path | None = None,
) -> RunningServer:
    """Start `python -m serving.server` in a child process and wait until it answers `/v2/health/ready`.

    Args:
        settings: Settings handed to the child through `settings.env()` (default: `get_settings()`).
        host: Address to bind (default: settings.serving_host).
        port: HTTP port (default: settings.serving_port).
        timeout: Seconds to wait for readiness; loading imports Feast, MLflow and KServe.
        log_path: Where the server's stdout/stderr go (default: `<home>/serving/server-<port>.log`).

    Returns:
        The running server, with its base URL (`http://host:port`).

    Raises:
        RuntimeError: If the process exits or is not ready in time (the log tail says why).
    """
    import httpx

    settings = settings or get_settings()
    host = host or settings.serving_host
    port = port or settings.serving_port
    log_path = log_path or settings.home / "serving" / f"server-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    client_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    url = f"http://{client_host}:{port}"
    env = {**os.environ, **settings.env()}
    command = [sys.executable, "-m", "serving.server", "--profile", settings.profile, "--host", host]
    command += ["--port", str(port)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = RunningServer(process=process, url=url, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"model server exited with code {process.returncode} before it was ready:\n{_tail(log_path)}"
            )
        try:
            if httpx.get(url + READY_PATH, timeout=2.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(
        f"model server {SERVED_MODEL_NAME!r} not ready at {url} after {timeout:.0f} s:\n{_tail(log_path)}"
    )


@contextmanager
def running_server(
    settings: Settings | None = None, host: str | None = None, port: int | None = None, timeout: float = 300.0
) -> Iterator[str]:
    """`with running_server(settings) as base_url:` a ready model server in a child process, stopped after."""
    server = start_in_background(settings, host=host, port=port, timeout=timeout)
    try:
        yield server.url
    finally:
        server.stop()


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


if __name__ == "__main__":
    main()
