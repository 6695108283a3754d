"""Low-latency reads of a feature service's values from Feast's online store, one query per feature view."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kserve.errors import ServerNotReady

if TYPE_CHECKING:
    from feast import FeatureStore

#: Seconds a read may wait (a Redis connect or reply, a SQLite lock) before the store counts as unreachable.
STORE_TIMEOUT_SECONDS = 1.0


class OnlineStoreUnavailable(ServerNotReady):
    """The online store cannot be read now: HTTP 503 (gRPC UNAVAILABLE); the next request tries again.

    Args:
        store: the online store's type, e.g. `redis`.
        cause: the error reading it raised.
    """

    def __init__(self, store: str, cause: BaseException):
        super().__init__()
        self.reason = self.error_msg = f"the {store} online store cannot be read now: {cause}".strip()


def store_errors() -> tuple[type[BaseException], ...]:
    """The errors that mean the online store cannot be read now.

    Redis refusing or not answering in time; SQLite locked by a writer past the timeout, its file unreadable
    or its tables missing (`sqlite3.DatabaseError` and its subclasses).
    """
    import redis.exceptions

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, sqlite3.DatabaseError)


class OnlineFeatureReader:
    """Read the features of a Feast feature service for a batch of entity ids.

    It resolves the service's feature views once, then calls the online store's own `online_read` with
    prepared entity keys: the same rows `FeatureStore.get_online_features` returns, without its per-call
    planning.

    Args:
        store: The Feast store (its registry must hold `service_name`).
        service_name: The feature service to read, e.g. `churn_v1`.
        join_key: The single join key of the service's entity, e.g. `customer_id`.
    """

    def __init__(self, store: FeatureStore, service_name: str, join_key: str = "customer_id"):
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        self._entity_key, self._value = EntityKey, Value
        self._config = store.config
        self._online_store = store._get_provider().online_store
        self.join_key = join_key
        service = store.get_feature_service(service_name)
        self._views = []
        for projection in service.feature_view_projections:
            view = store.get_feature_view(projection.name)
            names = [feature.name for feature in projection.features]
            if join_key not in view.join_keys:
                raise ValueError(f"feature view {view.name!r} is not keyed by {join_key!r}: {view.join_keys}")
            self._views.append((view, names))
        #: Feature names in feature-service order.
        self.feature_names = tuple(name for _, names in self._views for name in names)
        self._sqlite = _SqliteRows(store, self._views) if store.config.online_store.type == "sqlite" else None
        if store.config.online_store.type == "redis":
            _fail_fast(self._online_store._get_client(store.config.online_store))

    def read(self, entity_ids: Sequence[int]) -> tuple[list[dict[str, Any]], list[bool]]:
        """Feature values of each id (None where a value is NULL or missing) and whether the id is known.

        An id is known when every feature view of the service has a row for it in the online store.
        """
        rows, known, _ = self.read_stamped(entity_ids)
        return rows, known

    def read_stamped(self, entity_ids: Sequence[int]) -> tuple[list[dict[str, Any]], list[bool], list[Any]]:
        """As :meth:`read`, with the event time of each id's feature rows (the as-of date they describe;
        a `datetime`, or the store's text for it on SQLite; None for an unknown id)."""
        keys = [
            self._entity_key(join_keys=[self.join_key], entity_values=[self._value(int64_val=int(entity_id))])
            for entity_id in entity_ids
        ]
        if self._sqlite is not None:
            return self._sqlite.read(keys, self._config.entity_key_serialization_version)
        rows: list[dict[str, Any]] = [{} for _ in keys]
        known = [True] * len(keys)
        stamps: list[Any] = [None] * len(keys)
        for view, names in self._views:
            # a copy: Feast's Redis store appends its timestamp field to the list it is given
            results = self._online_store.online_read(self._config, view, keys, list(names))
            for index, (timestamp, values) in enumerate(results):
                if not _has_row(timestamp, values):
                    known[index] = False
                    values = {}
                elif stamps[index] is None:
                    stamps[index] = timestamp
                row = rows[index]
                for name in names:
                    row[name] = _value(values.get(name))
        return (
            rows,
            known,
            [stamp if is_known else None for stamp, is_known in zip(stamps, known, strict=True)],
        )


def _fail_fast(client: Any) -> None:
    """Bound a Redis client's connects and reads; retry a lost connection once, at once.

    redis-py waits for a reply without limit and retries a refused connection with back-off for seconds;
    here a server that is down answers 503 at once, one that does not answer within
    `STORE_TIMEOUT_SECONDS`, and the pool reconnects by itself once Redis is back.
    """
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError
    from redis.retry import Retry

    kwargs = client.connection_pool.connection_kwargs
    for name in ("socket_timeout", "socket_connect_timeout"):
        if kwargs.get(name) is None:  # unless the connection string sets one
            kwargs[name] = STORE_TIMEOUT_SECONDS
    # a connection the server closed (a restart) is retried on a new one; a timeout is not
    client.set_retry(Retry(NoBackoff(), 1, supported_errors=(ConnectionError,)))


def _value(proto: Any) -> Any:
    """The Python value of a Feast `ValueProto`, None when it is NULL or unset."""
    kind = proto.WhichOneof("val") if proto is not None else None
    return None if kind is None or kind == "null_val" else getattr(proto, kind)


class _SqliteRows:
    """Every view's rows of a batch of keys from Feast's SQLite online store, in one query.

    Feast's own `online_read` runs one query per view and converts each row's timestamp; here one
    `UNION ALL` over the views' tables (Feast's table names, its entity-key encoding and `ValueProto`
    values) reads the same rows, with each row's event time as the text SQLite holds (converted only where
    it is used, in the prediction log's thread).
    """

    def __init__(self, store: FeatureStore, views: list[tuple[Any, list[str]]]):
        from feast.infra.online_stores.sqlite import _table_id

        config = store.config
        self._store, self._config = store._get_provider().online_store, config
        versioning = config.registry.enable_online_feature_view_versioning
        self._tables = [f'"{_table_id(config.project, view, versioning)}"' for view, _ in views]
        self._names = [set(names) for _, names in views]
        self._all_names = [name for _, names in views for name in names]
        self._sql: dict[int, str] = {}
        self._timed: Any = None

    def _query(self, count: int) -> str:
        if count not in self._sql:
            marks = ",".join("?" * count)
            self._sql[count] = " UNION ALL ".join(
                f"SELECT {index}, entity_key, feature_name, value, CAST(event_ts AS TEXT) FROM {table} "
                f"WHERE entity_key IN ({marks})"
                for index, table in enumerate(self._tables)
            )
        return self._sql[count]

    def read(self, keys: list[Any], version: int) -> tuple[list[dict[str, Any]], list[bool], list[Any]]:
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.protos.feast.types.Value_pb2 import Value

        encoded = [serialize_entity_key(key, entity_key_serialization_version=version) for key in keys]
        unique = list(dict.fromkeys(encoded))  # a key asked twice is read once
        found: dict[bytes, dict[str, Any]] = {key: {} for key in unique}
        views: dict[bytes, set[int]] = {key: set() for key in unique}
        stamps: dict[bytes, str] = {}
        query, arguments = self._query(len(unique)), unique * len(self._tables)
        connection = self._store._get_conn(self._config)
        if connection is not self._timed:  # Feast opens it once, with SQLite's default 5 s lock wait
            connection.execute(f"PRAGMA busy_timeout = {int(STORE_TIMEOUT_SECONDS * 1000)}")
            self._timed = connection
        for view, key, name, blob, stamp in connection.execute(query, arguments):
            views[key].add(view)
            stamps.setdefault(key, stamp)
            if name in self._names[view]:
                proto = Value()
                proto.ParseFromString(blob)
                found[key][name] = _value(proto)
        known = [len(views[key]) == len(self._tables) for key in encoded]
        rows = [
            {name: found[key].get(name) for name in self._all_names}
            if is_known
            else dict.fromkeys(self._all_names)
            for key, is_known in zip(encoded, known, strict=True)
        ]
        return (
            rows,
            known,
            [stamps.get(key) if is_known else None for key, is_known in zip(encoded, known, strict=True)],
        )


def _has_row(timestamp: Any, values: dict | None) -> bool:
    """True when an `online_read` result is a stored row.

    SQLite answers a key it does not hold with `(None, None)`; Redis with empty values stamped at the epoch
    (the key has no `_ts:<view>` field).
    """
    return values is not None and timestamp is not None and timestamp.timestamp() > 0
