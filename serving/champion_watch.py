"""Pick up a newly promoted champion while serving: each process checks the alias on a timer and on SIGHUP."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from kserve.logging import logger


class ChampionWatcher:
    """Checks, in a thread of its own, whether the `champion` alias moved, and switches the models if so.

    A check runs when the thread starts, every `interval` seconds after, and whenever :meth:`check_now` is
    called (the server calls it on SIGHUP). Loading a new version happens in this thread while the event
    loop keeps answering with the version served; a failed check (registry unreachable, a version that
    cannot be served) is logged and the served version stays.

    Args:
        models: objects with `refresh_champion()` (`serving.model.ChurnModel`).
        interval: seconds between checks; 0 checks only when asked.
    """

    def __init__(self, models: Sequence[Any], interval: float):
        self.models = [model for model in models if hasattr(model, "refresh_champion")]
        self.interval = interval
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the checking thread (a daemon: it ends with the process)."""
        self._thread = threading.Thread(target=self._run, name="champion-watch", daemon=True)
        self._thread.start()

    def check_now(self) -> None:
        """Ask for a check at once; safe to call from a signal handler."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """End the thread (after the check it may be running) and wait for it up to `timeout` seconds."""
        self._stopped = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        # a first check at once: the alias may have moved (and a SIGHUP come) while the process started
        while not self._stopped:
            self._wake.clear()
            for model in self.models:
                try:
                    model.refresh_champion()
                except Exception:  # noqa: BLE001 - the served version stays; the next check tries again
                    logger.exception("champion check of %s failed; serving the same version", model.name)
            if not self._stopped:
                self._wake.wait(self.interval if self.interval > 0 else None)


def forget_registry_connections() -> None:
    """Drop the MLflow clients' connections a forked process inherited, so it opens its own.

    A SQLite or PostgreSQL connection pool and an HTTP session must not be used by two processes; the
    engines are disposed without closing the parent's connections (SQLAlchemy's advice for forking).
    """
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore
    from mlflow.utils.request_utils import _cached_get_request_session

    for store in (RegistryStore, TrackingStore):
        for engine in getattr(store, "_engine_map", {}).values():
            engine.dispose(close=False)
    _cached_get_request_session.cache_clear()
