"""The model server's prediction log: every scored customer as a JSON line, written off the request path.

A request only appends one tuple to an in-memory queue. A thread of the process drains the queue every
`flush_seconds` into the process's open segment (`components.core.prediction_log`) and writes it out to the
operating system; every `rotate_seconds` it seals the segment into the segment store and opens the next. On a
clean stop (SIGTERM, `close()`) the queue is drained and the segment sealed. What a SIGKILL loses is what was
still queued: at most `flush_seconds` of predictions (the file itself is sealed by the next process or the
loader). When the queue holds `max_pending` requests (a disk that stopped taking writes), the predictions of
newer ones are counted in `dropped` and not queued, so the log never grows the process without bound.
"""

from __future__ import annotations

import collections
import fcntl
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from components.core.prediction_log import (
    OPEN_SUFFIX,
    SegmentStore,
    encode,
    new_segment_name,
    seal_orphans,
)
from serving import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """One answered request, as the request path hands it to the log (encoded later, by the log's thread)."""

    request_id: str
    logged_at_us: int
    model_name: str
    model_version: str | None
    role: str
    protocol: str
    customer_ids: list[int]
    probabilities: list[float]
    known: list[bool]
    rows: list[dict[str, Any]]
    latency_ms: float
    #: Per customer: the event time of its online features (a datetime, or a store's text for one), or None.
    features_as_of: list[Any] | None = None
    #: The challenger to score the same rows with, off the request path: its version and scorer.
    shadow: Shadow | None = None

    def lines(self) -> bytes:
        """The champion's records, one JSON line per customer."""
        return self._lines(self.model_version, self.role, self.probabilities)

    def shadow_lines(self) -> tuple[bytes, int]:
        """The challenger's records for the same customers and features, and on how many known customers it
        agrees with the champion (same side of 0.5); raises what its scorer raises."""
        known_rows = [row for row, known in zip(self.rows, self.known, strict=True) if known]
        values = iter(self.shadow.predict(known_rows).tolist() if known_rows else [])
        probabilities = [next(values) if known else float("nan") for known in self.known]
        agree = sum(
            (ours >= 0.5) == (theirs >= 0.5)
            for ours, theirs, known in zip(self.probabilities, probabilities, self.known, strict=True)
            if known
        )
        return self._lines(self.shadow.version, "challenger", probabilities), agree

    def _lines(self, version: str | None, role: str, probabilities: list[float]) -> bytes:
        out = []
        as_of = self.features_as_of or [None] * len(self.customer_ids)
        for customer_id, probability, known, row, stamp in zip(
            self.customer_ids, probabilities, self.known, self.rows, as_of, strict=True
        ):
            out.append(
                encode(
                    {
                        "request_id": self.request_id,
                        "logged_at_us": self.logged_at_us,
                        "customer_id": customer_id,
                        "model_name": self.model_name,
                        "model_version": version,
                        "role": role,
                        "protocol": self.protocol,
                        "known": known,
                        "probability": probability if known else None,
                        "latency_ms": round(self.latency_ms, 3),
                        "features": row if known else None,
                        "features_as_of": stamp if known and stamp is not None else None,
                    }
                )
            )
        return b"".join(out)


@dataclass(frozen=True)
class Shadow:
    """A version scored beside the champion: its registry version and `predict(rows) -> probabilities`."""

    version: str
    predict: Callable[[list[dict[str, Any]]], Any]


class PredictionLog:
    """This process's prediction log; `log()` is what a request calls, `close()` what a stop calls.

    Args:
        spool: the folder of open segments (local and writable: an `emptyDir` on the cluster).
        store: where sealed segments go.
        rotate_seconds: seal the open segment and start another this often.
        flush_seconds: how often queued predictions are written to the open segment.
        max_pending: answered requests kept in memory before newer ones are dropped (and counted).
        on_shadow_failure: called with the exception when scoring a request's challenger fails (the first
            time, then every 1,000th); the champion's records are written all the same.
    """

    def __init__(
        self,
        spool: Path,
        store: SegmentStore,
        rotate_seconds: float = 60.0,
        flush_seconds: float = 0.02,
        max_pending: int = 20_000,
        on_shadow_failure: Callable[[BaseException, int], None] | None = None,
    ):
        self.spool, self.store = spool, store
        self.rotate_seconds, self.flush_seconds, self.max_pending = rotate_seconds, flush_seconds, max_pending
        self.pending: collections.deque[Scored] = collections.deque()
        self.dropped = 0
        #: challenger answers written, and requests whose challenger could not be scored
        self.shadowed = 0
        self.shadow_failures = 0
        self.on_shadow_failure = on_shadow_failure
        self._dropping = threading.Lock()  # request threads (gRPC's pool) count drops together
        self.written = 0
        self._stop = threading.Event()
        self._file: IO[bytes] | None = None
        self._name = ""
        self._opened = 0.0
        self._lock = threading.Lock()  # one drain at a time: the thread's and close()'s
        spool.mkdir(parents=True, exist_ok=True)
        seal_orphans(spool, store)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def log(self, scored: Scored) -> None:
        """Queue one answered request (called on the request path: an append, nothing else)."""
        if len(self.pending) >= self.max_pending:
            with self._dropping:
                self.dropped += len(scored.customer_ids)
            metrics.series().log_dropped.inc(len(scored.customer_ids))
            return
        self.pending.append(scored)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
                if self._file is not None and time.monotonic() - self._opened >= self.rotate_seconds:
                    with self._lock:
                        self._seal()
            except Exception:  # noqa: BLE001 - the log never stops the server; it retries next time
                log.exception("prediction log: writing to %s failed; retrying", self.spool)

    def flush(self) -> None:
        """Write every queued prediction to the open segment and hand it to the operating system."""
        with self._lock:
            if not self.pending:
                return
            if self._file is None:
                self._open()
            chunks = []
            while self.pending:
                scored = self.pending.popleft()
                chunks.append(scored.lines())
                self.written += len(scored.customer_ids)
                if scored.shadow is not None:
                    chunks.append(self._shadow_lines(scored))
            self._file.write(b"".join(chunks))
            self._file.flush()

    def _shadow_lines(self, scored: Scored) -> bytes:
        try:
            lines, agree = scored.shadow_lines()
        except Exception as exc:  # noqa: BLE001 - a failing challenger never costs the champion's records
            self.shadow_failures += 1
            metrics.series().shadow_failures.inc()
            if self.shadow_failures % 1000 == 1:
                log.warning(
                    "challenger version %s failed to score a request", scored.shadow.version, exc_info=True
                )
                if self.on_shadow_failure is not None:
                    self.on_shadow_failure(exc, self.shadow_failures)
            return b""
        self.shadowed += len(scored.customer_ids)
        series = metrics.series()
        series.shadow.labels("agree").inc(agree)
        series.shadow.labels("disagree").inc(sum(scored.known) - agree)
        return lines

    def _open(self) -> None:
        self._name = new_segment_name()
        self._file = (self.spool / f"{self._name}{OPEN_SUFFIX}").open("ab")
        fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._opened = time.monotonic()

    def _seal(self) -> None:
        if self._file is None:
            return
        path = Path(self._file.name)
        self._file.close()  # releases the lock; the loader seals it if the move below does not happen
        self._file = None
        self.store.put(path, self._name)

    def close(self) -> None:
        """Stop the thread, write what is queued and seal the segment (what a clean stop must do)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(5.0, self.flush_seconds * 5))
        self.flush()
        with self._lock:
            self._seal()
        if self.dropped:
            log.warning("prediction log: %d predictions were dropped (queue full)", self.dropped)
