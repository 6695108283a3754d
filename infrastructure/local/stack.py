"""`python -m infrastructure.local.stack up|down|status|env`: the `stack` services on loopback."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from components.core.ports import port_in_use
from infrastructure.local.config import StackConfig, StackConfigError, load_config, write_private
from infrastructure.local.downloads import DownloadError
from infrastructure.local.mlflow_server import MlflowServer
from infrastructure.local.object_store import ObjectStore
from infrastructure.local.postgres import Postgres
from infrastructure.local.procs import PidFile, ProcessRecord, log_tail, spawn, start_ticks, stop, wait_until
from infrastructure.local.redis_server import Redis
from infrastructure.local.rest_catalog import RestCatalog
from infrastructure.local.service import Service, ServiceError
from infrastructure.local.trino_server import Trino

#: Start order; `down` stops in reverse.
SERVICE_CLASSES = (Postgres, Redis, ObjectStore, RestCatalog, Trino, MlflowServer)

EXIT_OK, EXIT_FAILED, EXIT_PORT_TAKEN, EXIT_NOT_HEALTHY = 0, 1, 2, 3


class StartFailure(RuntimeError):
    """A service did not start or did not become healthy; the message carries its log tail."""


def services(config: StackConfig) -> list[Service]:
    return [cls(config) for cls in SERVICE_CLASSES]


def say(message: str) -> None:
    print(message, flush=True)


def _pidfile(service: Service) -> PidFile:
    return PidFile(service.config.run, service.name)


def port_conflicts(to_start: Sequence[Service]) -> list[str]:
    """One message per service whose port is already taken by some other process."""
    return [
        f"port {s.port} wanted by {s.name} is already in use (set {s.port_variable} to another port, "
        f"or stop what listens there: `ss -ltnp 'sport = :{s.port}'`)"
        for s in to_start
        if port_in_use(s.port)
    ]


def _failure(service: Service, reason: str) -> StartFailure:
    tail = log_tail(service.log_path)
    return StartFailure(
        f"{service.name} (port {service.port}) {reason}\n"
        f"--- last lines of {service.log_path} ---\n{tail or '(log is empty)'}\n--- end of log ---"
    )


def start_service(service: Service, timeout: float) -> str:
    """Prepare, launch and wait for one service to be healthy, then run its first-start setup.

    Returns:
        The health description of the running service.

    Raises:
        StartFailure: it exited, or was not healthy within `timeout` seconds (it is stopped again).
    """
    pidfile = _pidfile(service)
    try:
        service.prepare(say)
        launch = service.launch()
    except (ServiceError, DownloadError) as exc:
        raise _failure(service, f"could not be prepared: {exc}") from exc
    pid = spawn(launch.command, service.log_path, env=launch.env, cwd=launch.cwd, user=launch.user)
    ticks = start_ticks(pid)
    if ticks is None:
        raise _failure(service, "exited immediately after launch")
    record = ProcessRecord(pid=pid, start_ticks=ticks, port=service.port, command=launch.command)
    pidfile.write(record)
    healthy = wait_until(lambda: bool(service.check()), timeout, alive=lambda: start_ticks(pid) == ticks)
    if not healthy:
        died = start_ticks(pid) != ticks
        stop(record, service.stop_signal, service.stop_grace)
        pidfile.remove()
        reason = "exited during start-up" if died else f"was not healthy within {timeout:.0f} s"
        raise _failure(service, reason)
    try:
        service.after_start(say)
        return service.check()
    except Exception as exc:
        raise _failure(service, f"started but its setup failed: {exc}") from exc


def _recheck(service: Service, record: ProcessRecord, config: StackConfig) -> str:
    """Wait for an already running service to be healthy and redo its setup (databases, bucket)."""
    alive = lambda: _pidfile(service).alive() is not None  # noqa: E731
    if not wait_until(lambda: bool(service.check()), config.start_timeout, alive=alive):
        raise _failure(service, f"is running (pid {record.pid}) but not healthy")
    try:
        service.after_start(say)
        return f"(pid {record.pid}, port {service.port}): {service.check()}"
    except Exception as exc:
        raise _failure(service, f"is running but its setup failed: {exc}") from exc


def write_env_file(config: StackConfig) -> None:
    """Write the clients' variables (endpoints and keys) to `config.env_file`, readable by its owner only.

    The `stack` profile's settings read this file, so `lakehouse run --profile stack` needs no `eval`.
    """
    lines = [
        "# Written by `infrastructure/local/stack.sh up`: the stack's endpoints and development-only keys",
        "# (generated for this machine unless given in the environment). Git-ignored; never commit it.",
        *(f"{key}={value}" for key, value in config.client_env().items()),
    ]
    write_private(config.env_file, "\n".join(lines) + "\n")


def up(config: StackConfig, stack: Sequence[Service] | None = None) -> int:
    """Start every service that is not running yet; a second call only re-checks health."""
    stack = list(services(config) if stack is None else stack)
    began = time.monotonic()
    for folder in (config.home, config.logs, config.run, config.cache):
        folder.mkdir(parents=True, exist_ok=True)
    write_env_file(config)
    if config.dev_credentials:
        say(
            f"note: development-only keys for this machine are in {config.env_file} (S3 and the catalog's "
            "OAuth2 client); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and LAKEHOUSE_CATALOG_CLIENT_ID/"
            "LAKEHOUSE_CATALOG_CLIENT_SECRET to choose your own"
        )
    running = {s.name: _pidfile(s).alive() for s in stack}
    conflicts = port_conflicts([s for s in stack if running[s.name] is None])
    if conflicts:
        for message in conflicts:
            say(f"ERROR: {message}")
        say("nothing was started")
        return EXIT_PORT_TAKEN
    for index, service in enumerate(stack):
        step = time.monotonic()
        try:
            if running[service.name] is not None:
                say(f"{service.name:8} already running {_recheck(service, running[service.name], config)}")
                continue
            detail = start_service(service, config.start_timeout)
        except StartFailure as exc:
            say(f"ERROR: {exc}")
            if index:
                say("the services before it are still running; `stack.sh down` stops them")
            return EXIT_FAILED
        pid = _pidfile(service).read().pid
        took = time.monotonic() - step
        say(f"{service.name:8} started in {took:5.1f} s (pid {pid}, port {service.port}): {detail}")
    say(f"stack up in {time.monotonic() - began:.1f} s; logs in {config.logs}")
    return EXIT_OK


def down(config: StackConfig, stack: Sequence[Service] | None = None) -> int:
    """Stop every recorded service, last started first; fine when nothing runs."""
    stack = list(services(config) if stack is None else stack)
    began = time.monotonic()
    for service in reversed(stack):
        pidfile = _pidfile(service)
        record = pidfile.read()
        if record is None:
            say(f"{service.name:8} not running")
            continue
        step = time.monotonic()
        result = stop(record, service.stop_signal, service.stop_grace)
        pidfile.remove()
        say(f"{service.name:8} {result} in {time.monotonic() - step:4.1f} s (pid {record.pid})")
    say(f"stack down in {time.monotonic() - began:.1f} s")
    return EXIT_OK


def status(config: StackConfig, stack: Sequence[Service] | None = None) -> int:
    """Print each service's pid, port and health; non-zero unless all are running and healthy."""
    stack = list(services(config) if stack is None else stack)
    all_healthy = True
    for service in stack:
        record = _pidfile(service).alive()
        if record is None:
            taken = " (port in use by another process)" if port_in_use(service.port) else ""
            say(f"{service.name:8} stopped   port {service.port}{taken}")
            all_healthy = False
            continue
        try:
            detail = f"healthy   {service.check()}"
        except Exception as exc:  # noqa: BLE001 - any failure of the probe means unhealthy
            detail, all_healthy = f"UNHEALTHY {type(exc).__name__}: {exc}", False
        say(f"{service.name:8} pid {record.pid:<7} port {service.port:<5} {detail}")
    return EXIT_OK if all_healthy else EXIT_NOT_HEALTHY


def print_env(config: StackConfig) -> int:
    """Print `export` lines that point the platform's `stack` profile at these services (other shells, other
    tools; the `stack` profile itself reads the env file `up` wrote)."""
    for key, value in config.client_env().items():
        print(f"export {key}={value}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack.sh", description=__doc__)
    parser.add_argument("action", choices=("up", "down", "status", "env"))
    args = parser.parse_args(argv)
    try:
        config = load_config()
    except StackConfigError as exc:
        say(f"ERROR: {exc}")
        return EXIT_FAILED
    actions = {"up": up, "down": down, "status": status, "env": print_env}
    return actions[args.action](config)


if __name__ == "__main__":
    sys.exit(main())
