"""The KServe model server of model `churn`: one address, OIP metadata with versions, gRPC, forked workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from functools import partial
from typing import Any

import kserve

from components.core.settings import Settings
from serving.champion_watch import ChampionWatcher, forget_registry_connections
from serving.connections import GuardedHttpToolsProtocol
from serving.fast_path import V1Predict
from serving.metrics import mark_dead
from serving.model import ChurnModel
from serving.online_features import OnlineStoreUnavailable
from serving.open_inference import BoundGRPCServer, VersionedDataPlane
from serving.request_guard import RequestGuard
from serving.workers import fork_worker, listening_socket, one_math_thread, quiet_request_logs, stop_workers


def build_model(settings: Settings) -> ChurnModel:
    """The loaded `ChurnModel` (champion from MLflow, features from Feast's online store)."""
    model = ChurnModel(settings)
    model.load()
    return model


def serve(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    grpc_port: int | None = None,
    workers: int = 1,
) -> None:
    """Load the model and serve it until stopped: V1 and V2 REST, and V2 gRPC when `grpc_port` is given.

    Args:
        settings: the profile's settings (registry, online store, default host and port).
        host: address to bind (default: settings.serving_host), for REST and gRPC.
        port: HTTP port (default: settings.serving_port).
        grpc_port: port of the Open Inference Protocol's gRPC service; none when None.
        workers: HTTP processes sharing the port. The extra ones are forked once the model is loaded and
            reopen the online store; gRPC is answered by the first.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    model = build_model(settings)
    one_math_thread()
    server = ChurnModelServer(
        bind_host=host or settings.serving_host,
        grpc=grpc_port,
        processes=workers,
        http_port=port or settings.serving_port,
        enable_latency_logging=False,
        champion_poll_seconds=settings.policy.champion_poll_seconds,
        max_body_bytes=settings.policy.serving_max_body_bytes,
    )
    quiet_request_logs()  # after the server configured logging
    server.start([model])


class ChurnModelServer(kserve.ModelServer):
    """KServe's model server on one address, with versions in model metadata, gRPC and forked workers.

    KServe's own multi-worker mode starts each worker as a new interpreter that unpickles the model and
    must answer a liveness ping within 5 s; importing KServe alone takes longer than that on a busy
    2-core machine, so workers were killed and restarted in a loop. Here the workers are forked from the
    process that loaded the model, reopen only the online store, and listen on the same port with
    SO_REUSEPORT, so the kernel spreads connections over the processes.

    Every process checks the `champion` alias on its own every `champion_poll_seconds` and on SIGHUP (the
    first process passes the signal on to the workers), and switches to a newly promoted version in place.

    Args:
        bind_host: address for REST and gRPC (KServe binds every interface).
        grpc: gRPC port, or None for no gRPC.
        processes: HTTP processes, this one included.
        champion_poll_seconds: seconds between checks of the alias (0: on SIGHUP only).
        max_body_bytes: largest request body (HTTP 413 above it; gRPC messages likewise).
        **kwargs: for `kserve.ModelServer` (http_port, enable_latency_logging, ...).
    """

    def __init__(
        self,
        bind_host: str,
        grpc: int | None,
        processes: int,
        champion_poll_seconds: float = 0.0,
        max_body_bytes: int = 1 << 20,
        **kwargs: Any,
    ):
        super().__init__(enable_grpc=False, workers=1, **kwargs)
        self.bind_host, self.grpc, self.processes = bind_host, grpc, processes
        self.champion_poll_seconds, self.max_body_bytes = champion_poll_seconds, max_body_bytes
        self.dataplane = VersionedDataPlane(model_registry=self.registered_models)
        self.worker_pids: list[int] = []
        self.watcher: ChampionWatcher | None = None
        self.first_pid = os.getpid()

    def _watch_champion(self, models: list[Any]) -> None:
        """Start this process's champion watcher (after forking: a thread does not survive a fork)."""
        self.watcher = ChampionWatcher(models, self.champion_poll_seconds)
        self.watcher.start()

    def _on_hangup(self, signum: int, frame: Any) -> None:
        """SIGHUP: check the champion now, in this process and (from the first process) in every worker."""
        if self.watcher is not None:
            self.watcher.check_now()
        if os.getpid() == self.first_pid:
            for pid in self.worker_pids:
                with contextlib.suppress(ProcessLookupError):  # a worker that already exited
                    os.kill(pid, signal.SIGHUP)

    def _http_server(self) -> Any:
        """KServe's REST server with its application built, behind the request guard (which also keeps the
        model repository extension off the port, and answers V1 predictions through the data plane)."""
        import kserve.model_server as kserve_app
        from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
        from kserve.protocol.rest.server import RESTServer

        rest = RESTServer(
            FASTAPI_APP_IMPORT_STRING,
            self.dataplane,
            self.model_repository_extension,
            self.http_port,
            grace_period=self.grace_period,
            event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
        )
        rest.config.access_log = False
        rest.config.http = GuardedHttpToolsProtocol  # bounded headers, stalled clients cut off
        rest.create_application()
        kserve_app.app.add_exception_handler(OnlineStoreUnavailable, _store_unavailable)
        rest.config.app = RequestGuard(
            kserve_app.app,
            self.max_body_bytes,
            self._served_versions,
            V1Predict(self.dataplane, kserve_app.app),
        )
        return rest

    def _served_versions(self, name: str) -> list[str] | None:
        """The versions model `name` is served by now, None when no such model is here."""
        model = self.registered_models.get_models().get(name)
        return None if model is None else list(getattr(model, "versions", None) or [])

    def _worker(self, models: list[Any], first: socket.socket) -> None:
        """A forked HTTP worker: reopen what each model cannot share, then serve a socket of its own."""
        first.close()  # the first process accepts the connections the kernel gives its socket
        forget_registry_connections()
        for model in models:
            model.reopen()
        self._watch_champion(models)
        sock = listening_socket(self.bind_host, self.http_port, shared=True)
        # uvicorn stops on SIGTERM/SIGINT, then raises the signal again under the handler it found: with the
        # default one the process would die there, before its prediction log is written out
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, _stopped)
        try:
            self._http_server()._server.run(sockets=[sock])
        finally:
            _close_logs(models)

    def start(self, models: list[Any]) -> None:
        self._register_and_check_atleast_one_model_is_ready(models)
        sock = listening_socket(self.bind_host, self.http_port, shared=self.processes > 1)
        signal.signal(signal.SIGHUP, self._on_hangup)  # before forking: a worker never dies of an early one
        for _ in range(self.processes - 1):
            self.worker_pids.append(fork_worker(partial(self._worker, models, sock)))
        self._watch_champion(models)
        rest = self._http_server()
        self.servers.append(rest._server.serve(sockets=[sock]))
        if self.grpc:
            extension, limit = self.model_repository_extension, self.max_body_bytes
            self._grpc_server = BoundGRPCServer(self.bind_host, self.grpc, self.dataplane, extension, limit)
            self.servers.append(self._grpc_server.start(self.max_threads))
        self.setup_event_loop()
        self.register_signal_handler()
        try:
            asyncio.run(self._serve())
        finally:
            stop_workers(self.worker_pids)
            for pid in self.worker_pids:
                mark_dead(pid)
            _close_logs(models)

    def stop(self, sig: int) -> None:
        stop_workers(self.worker_pids)
        super().stop(sig)


def _stopped(signum: int, frame: Any) -> None:
    """A worker's stop signal once uvicorn has shut down: nothing left to do but what follows the server."""


def _close_logs(models: list[Any]) -> None:
    """Seal each model's prediction log once the server answers no more requests."""
    for model in models:
        close = getattr(model, "close_log", None)
        if close is not None:
            close()


async def _store_unavailable(_: Any, exc: OnlineStoreUnavailable) -> Any:
    """HTTP 503 with Retry-After: the online store is down now; the same request may succeed in a second."""
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=503, content={"error": str(exc)}, headers={"Retry-After": "1"})
