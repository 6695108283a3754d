"""ML Metadata's gRPC service, `ml_metadata.MetadataStoreService`, on the store PyPI's ml-metadata ships.

Kubeflow Pipelines' driver, launcher and UI talk to this service; upstream serves it with a C++ server
(`metadata_store_server`). The ml-metadata wheel holds the same C++ store as a Python extension with one
function per RPC that takes the serialized request and returns the serialized response: this server passes
the bytes of each call through unchanged (generic grpcio handlers, no message is decoded here), on port 8080,
and the same calls as gRPC-Web (unary, `application/grpc-web+proto` and `application/grpc-web-text`, with
CORS) on port 9090, which upstream puts behind an Envoy proxy for the UI.

The database is MySQL/MariaDB, set as upstream's server is (`--mysql_config_host` etc.) or by the variables
Kubeflow's manifests set (MYSQL_HOST, MYSQL_PORT, MYSQL_DATABASE, DBCONFIG_USER, DBCONFIG_PASSWORD); the store
creates the database when it is missing. `--sqlite_path` uses a SQLite file instead.

Runs inside the server's own environment (`environment.py`): `python -m infrastructure.metadata --help`.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import re
import signal
import socket
import sys
import threading
from collections.abc import Mapping
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

import grpc
from ml_metadata import __version__ as MLMD_VERSION
from ml_metadata.metadata_store.pywrap.metadata_store_extension import metadata_store as extension
from ml_metadata.proto import metadata_store_pb2, metadata_store_service_pb2

LOG = logging.getLogger("ml-metadata-server")

SERVICE = "ml_metadata.MetadataStoreService"
_DESCRIPTOR = metadata_store_service_pb2.DESCRIPTOR.services_by_name["MetadataStoreService"]
METHODS = tuple(method.name for method in _DESCRIPTOR.methods)
#: the service's RPCs the extension has no function for (in 1.17.1: GetParentContextsByContexts,
#: GetChildrenContextsByContexts, GetLineageGraph)
UNSERVED = tuple(name for name in METHODS if not hasattr(extension, name))
STATUS_BY_CODE = {status.value[0]: status for status in grpc.StatusCode}
#: what the MySQL client says when the server is not there (the store reports these as INTERNAL, and its
#: message carries no error number): such a failure is UNAVAILABLE and the connection is opened again
CONNECTION_LOST = re.compile(
    r"mysql_real_connect failed|can't connect|gone away|lost connection|connection refused|"
    r"unknown (mysql |mariadb )?server host|connection was killed",
    re.IGNORECASE,
)
DATABASE_NAME = re.compile(r"[A-Za-z0-9_$]+")  # the store puts it in `CREATE DATABASE` unquoted
#: the largest request either port reads (gRPC's own default)
MAX_REQUEST = 4 << 20


class Reply(NamedTuple):
    """One call's answer: the status, the serialized response (empty unless OK) and the error message."""

    code: grpc.StatusCode
    body: bytes = b""
    message: str = ""


@dataclass(frozen=True)
class Settings:
    grpc_port: int
    web_port: int
    address: str
    connection: metadata_store_pb2.ConnectionConfig
    upgrade: bool
    database: str  # the database as the start line names it (no password)


class Store:
    """The extension's store on one database connection, opened when first needed and again after it was lost.

    Calls run one at a time: the extension keeps Python's interpreter lock during a call anyway, and its
    connection is not meant for two threads at once.
    """

    def __init__(self, connection: metadata_store_pb2.ConnectionConfig, upgrade: bool, database: str):
        self._connection = connection.SerializeToString()
        migration = metadata_store_pb2.MigrationOptions(enable_upgrade_migration=upgrade)
        self._migration = migration.SerializeToString()
        self._database = database
        self._store = None
        self._lock = threading.Lock()

    def _open(self) -> Reply | None:
        if self._store is not None:
            return None
        try:
            self._store = extension.CreateMetadataStore(self._connection, self._migration)
        except RuntimeError as exc:
            why = self._why() if "mysql_real_connect failed" in str(exc) else ""
            message = f"cannot open the database {self._database}: {exc}{why}"
            return Reply(grpc.StatusCode.UNAVAILABLE, message=message)
        return None

    def _why(self) -> str:
        """What the MySQL client leaves out when it cannot connect: whether anything listens there."""
        config = metadata_store_pb2.ConnectionConfig.FromString(self._connection)
        try:
            socket.create_connection((config.mysql.host, config.mysql.port), timeout=2).close()
        except OSError as exc:
            return f" (nothing answers at {config.mysql.host}:{config.mysql.port}: {exc})"
        return " (the server answers: check the user, the password and that it allows mysql_native_password)"

    def open(self) -> Reply | None:
        """Connect now (a start checks the database); None when it answered, else why not."""
        with self._lock:
            return self._open()

    def call(self, method: str, request: bytes) -> Reply:
        with self._lock:
            failed = self._open()
            if failed:
                return failed
            response, message, code = getattr(extension, method)(self._store, request)
            text = message.decode("utf-8", "replace")
            if code == grpc.StatusCode.INTERNAL.value[0] and CONNECTION_LOST.search(text):
                self._store = None  # a new connection for the next call
                message = f"the database {self._database} is gone: {text}"
                return Reply(grpc.StatusCode.UNAVAILABLE, message=message)
        return Reply(STATUS_BY_CODE.get(code, grpc.StatusCode.UNKNOWN), response if code == 0 else b"", text)


class MetadataService:
    """Every RPC of the service by name: the store's answer, or why there is none."""

    def __init__(self, store: Store):
        self.store = store

    def call(self, method: str, request: bytes) -> Reply:
        if method not in METHODS:
            return Reply(grpc.StatusCode.UNIMPLEMENTED, message=f"{SERVICE} has no method {method!r}")
        if method in UNSERVED:
            return Reply(
                grpc.StatusCode.UNIMPLEMENTED,
                message=f"{method} is not served: the ml-metadata {MLMD_VERSION} store has no call for it "
                f"(unserved here: {', '.join(UNSERVED)})",
            )
        try:
            reply = self.store.call(method, request)
        except Exception as exc:  # never let one call take the server down
            LOG.exception("%s failed", method)
            return Reply(grpc.StatusCode.INTERNAL, message=f"{method} failed in the server: {exc}")
        if reply.code != grpc.StatusCode.OK:
            LOG.warning("%s: %s: %s", method, reply.code.name, reply.message[:500])
        return reply


def grpc_server(service: MetadataService, address: str, port: int, workers: int = 8) -> grpc.Server:
    """The gRPC server (not started yet), every method of the service passing raw bytes.

    Raises:
        OSError: the port cannot be bound.
    """

    def behaviour(method: str):
        def answer(request: bytes, context: grpc.ServicerContext) -> bytes:
            reply = service.call(method, request)
            if reply.code != grpc.StatusCode.OK:
                context.abort(reply.code, reply.message)
            return reply.body

        return answer

    handlers = {method: grpc.unary_unary_rpc_method_handler(behaviour(method)) for method in METHODS}
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
        handlers=[grpc.method_handlers_generic_handler(SERVICE, handlers)],
    )
    try:
        bound = server.add_insecure_port(f"{address}:{port}")
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address}:{port} for gRPC: {exc}") from None
    if bound == 0:
        raise OSError(f"cannot listen on {address}:{port} for gRPC")
    return server


# --- gRPC-Web: https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md, unary calls only ---

GRPC_WEB = "application/grpc-web"
GRPC_WEB_TEXT = "application/grpc-web-text"
DATA_FRAME, TRAILER_FRAME, COMPRESSED = 0x00, 0x80, 0x01
CORS_ALLOW_HEADERS = (
    "content-type, x-grpc-web, x-user-agent, grpc-timeout, x-accept-content-transfer-encoding, "
    "x-accept-response-streaming, keep-alive, user-agent, cache-control, content-transfer-encoding"
)


class FrameError(ValueError):
    """A gRPC-Web request body that is not one uncompressed message frame."""


def frame(flags: int, payload: bytes) -> bytes:
    return bytes([flags]) + len(payload).to_bytes(4, "big") + payload


def unframe(body: bytes) -> bytes:
    """The message of a request body holding exactly one data frame.

    Raises:
        FrameError: no frame, a compressed or trailer frame, or a length that disagrees with the body.
    """
    if len(body) < 5:
        raise FrameError(f"a gRPC-Web request is a 5-byte frame header and a message; got {len(body)} bytes")
    flags, length = body[0], int.from_bytes(body[1:5], "big")
    if flags & COMPRESSED:
        raise FrameError("compressed messages are not accepted (send them uncompressed)")
    if flags != DATA_FRAME:
        raise FrameError(f"the request's frame is not a message (flags {flags:#04x})")
    if len(body) != 5 + length:
        raise FrameError(f"the frame says {length} bytes of message, the body holds {len(body) - 5}")
    return body[5:]


def decode_text(body: bytes) -> bytes:
    """Base64 as `grpc-web-text` sends it: padded chunks may follow each other, each decoded on its own."""
    data = b"".join(body.split())
    try:
        if b"=" not in data.rstrip(b"="):
            return base64.b64decode(data, validate=True)
        # 4 characters always make up to 3 bytes on their own, so a padded chunk ends on a block boundary
        return b"".join(base64.b64decode(data[i : i + 4], validate=True) for i in range(0, len(data), 4))
    except ValueError as exc:
        raise FrameError(f"the {GRPC_WEB_TEXT} body is not base64: {exc}") from None


def percent_encoded(message: str) -> str:
    """`grpc-message` as the protocol sends it: printable ASCII but `%` as is, every other byte as %XX."""
    return "".join(chr(b) if 0x20 <= b <= 0x7E and b != 0x25 else f"%{b:02X}" for b in message.encode())


def web_handler(service: MetadataService) -> type[BaseHTTPRequestHandler]:
    """The HTTP/1.1 handler answering `POST /ml_metadata.MetadataStoreService/METHOD` as gRPC-Web."""

    class GrpcWebHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ml-metadata-grpc-web"

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
            LOG.debug("grpc-web %s: " + format, self.client_address[0], *args)

        def _cors(self) -> None:
            self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
            self.send_header("Vary", "Origin")
            self.send_header("Access-Control-Expose-Headers", "grpc-status, grpc-message")

        def _plain(self, status: int, text: str) -> None:
            body = (text + "\n").encode()
            self.send_response(status)
            self._cors()
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_OPTIONS(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(204)
            self._cors()
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            requested = self.headers.get("Access-Control-Request-Headers")
            self.send_header("Access-Control-Allow-Headers", requested or CORS_ALLOW_HEADERS)
            self.send_header("Access-Control-Max-Age", "86400")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            self._plain(405, f"gRPC-Web: POST /{SERVICE}/METHOD with Content-Type {GRPC_WEB}+proto")

        def _body(self) -> bytes | None:
            """The request's body (Content-Length or chunked); None when refused, the answer sent."""
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks, size = [], 0
                while True:
                    length = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if length == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(chunks)
                    size += length
                    if size > MAX_REQUEST * 2:
                        self.close_connection = True
                        self._plain(413, f"request larger than {MAX_REQUEST} bytes")
                        return None
                    chunks.append(self.rfile.read(length))
                    self.rfile.readline()
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self.close_connection = True
                self._plain(411, "Content-Length (or chunked transfer) required")
                return None
            if int(length) > MAX_REQUEST * 2:  # base64 is longer than the message
                self.close_connection = True
                self._plain(413, f"request larger than {MAX_REQUEST} bytes")
                return None
            return self.rfile.read(int(length))

        def do_POST(self) -> None:  # noqa: N802
            try:
                body = self._body()
            except ValueError:
                self.close_connection = True
                self._plain(400, "malformed chunked body")
                return
            if body is None:
                return
            kind = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if kind not in (GRPC_WEB, GRPC_WEB + "+proto", GRPC_WEB_TEXT, GRPC_WEB_TEXT + "+proto"):
                self._plain(415, f"Content-Type must be {GRPC_WEB}[+proto] or {GRPC_WEB_TEXT}[+proto]")
                return
            text = kind.startswith(GRPC_WEB_TEXT)
            prefix, _, method = self.path.split("?", 1)[0].rpartition("/")
            try:
                request = unframe(decode_text(body) if text else body)
            except FrameError as exc:
                reply = Reply(grpc.StatusCode.INVALID_ARGUMENT, message=str(exc))
            else:
                if prefix == "/" + SERVICE:
                    reply = service.call(method, request)
                else:
                    reply = Reply(grpc.StatusCode.UNIMPLEMENTED, message=f"no service at {self.path}")
            self._answer(reply, text)

        def _answer(self, reply: Reply, text: bool) -> None:
            self.send_response(200)
            self._cors()
            self.send_header("Content-Type", (GRPC_WEB_TEXT if text else GRPC_WEB) + "+proto")
            status = str(reply.code.value[0])
            if reply.code != grpc.StatusCode.OK:  # trailers only: the status in the headers, no body
                self.send_header("grpc-status", status)
                self.send_header("grpc-message", percent_encoded(reply.message))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            trailers = f"grpc-status:{status}\r\ngrpc-message:\r\n".encode()
            body = frame(DATA_FRAME, reply.body) + frame(TRAILER_FRAME, trailers)
            if text:
                body = base64.b64encode(body)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return GrpcWebHandler


class WebServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


def web_server(service: MetadataService, address: str, port: int) -> WebServer:
    """The gRPC-Web server, bound (serve it with `serve_forever`).

    Raises:
        OSError: the port cannot be bound.
    """
    return WebServer((address, port), web_handler(service))


# --- settings ---


def _flag_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {value!r}")


def _port(value: str | int) -> int:
    """A port; also as `tcp://ADDRESS:PORT`, what Kubernetes sets MYSQL_PORT to for a Service `mysql`."""
    text = str(value)
    if text.startswith("tcp://"):
        text = text.rsplit(":", 1)[-1]
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {value!r}")
    return port


def parse_settings(argv: list[str] | None = None, environ: Mapping[str, str] = os.environ) -> Settings:
    """The flags (upstream's names where upstream has one); the database's default to Kubeflow's variables.

    Exits with status 2 and a message naming the setting when the settings cannot work.
    """
    summary = __doc__.split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m infrastructure.metadata", description=summary)
    parser.add_argument("--grpc_port", type=_port, default=8080)
    parser.add_argument("--grpc_web_port", type=_port, default=9090, help="0: no gRPC-Web")
    parser.add_argument("--listen_address", default="0.0.0.0")
    for flag, variable, default in (
        ("host", "MYSQL_HOST", ""),
        ("port", "MYSQL_PORT", "3306"),
        ("database", "MYSQL_DATABASE", "metadb"),
        ("user", "DBCONFIG_USER", "root"),
        ("password", "DBCONFIG_PASSWORD", ""),
    ):
        parser.add_argument(
            f"--mysql_config_{flag}",
            type=_port if flag == "port" else str,
            default=environ.get(variable, default),
            help=f"default: {variable}" + (f", else {default}" if default else ""),
        )
    parser.add_argument("--sqlite_path", default="", help="a SQLite file instead of MySQL")
    parser.add_argument(
        "--enable_database_upgrade",
        type=_flag_bool,
        nargs="?",
        const=True,
        default=False,
        help="migrate a database an older ml-metadata made",
    )
    args = parser.parse_args(argv)
    connection = metadata_store_pb2.ConnectionConfig()
    if args.sqlite_path:
        connection.sqlite.filename_uri = args.sqlite_path
        connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        database = f"sqlite:{args.sqlite_path}"
    elif args.mysql_config_host:
        if not DATABASE_NAME.fullmatch(args.mysql_config_database):
            parser.error(
                f"--mysql_config_database / MYSQL_DATABASE {args.mysql_config_database!r}: "
                "use letters, digits, _ and $ only"
            )
        mysql = connection.mysql
        mysql.host = args.mysql_config_host
        mysql.port = args.mysql_config_port
        mysql.database = args.mysql_config_database
        mysql.user = args.mysql_config_user
        mysql.password = args.mysql_config_password
        host = args.mysql_config_host
        database = f"mysql://{mysql.user}@{host}:{mysql.port}/{mysql.database}"
    else:
        parser.error("no database: set MYSQL_HOST (or --mysql_config_host), or --sqlite_path (SQLite)")
    upgrade = args.enable_database_upgrade
    return Settings(args.grpc_port, args.grpc_web_port, args.listen_address, connection, upgrade, database)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    settings = parse_settings(argv)
    store = Store(settings.connection, settings.upgrade, settings.database)
    failed = store.open()
    service = MetadataService(store)
    try:
        server = grpc_server(service, settings.address, settings.grpc_port)
        web = web_server(service, settings.address, settings.web_port) if settings.web_port else None
    except OSError as exc:
        LOG.error("not started: %s", exc)
        return 1
    server.start()
    if web is not None:
        threading.Thread(target=web.serve_forever, name="grpc-web", daemon=True).start()
    state = f"not answering yet: {failed.message}" if failed else "answering"
    web_text = f"gRPC-Web on {settings.address}:{settings.web_port}" if web else "gRPC-Web off"
    LOG.info(
        "ml-metadata %s server: gRPC on %s:%d, %s, database %s (%s)",
        MLMD_VERSION,
        settings.address,
        settings.grpc_port,
        web_text,
        settings.database,
        state,
    )
    stopping = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stopping.set())
    stopping.wait()
    if web is not None:
        web.shutdown()
    server.stop(grace=5).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
