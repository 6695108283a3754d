"""A real Kubeflow Pipelines API server on loopback, for `lakehouse submit` end to end.

The API server of the node's `kfp-backend` image: the one revision the Go module proxy serves
(github.com/kubeflow/pipelines v0.0.0-20231208180049-c5658f09ec38) with the platform's patches, built once
into `.cache/programs/` for both, on MariaDB (Debian's `mariadb-server`;
that revision's PostgreSQL mode does not create its own schema) and the S3 server of the `stack` services,
creating its Argo `Workflow` objects in the test's real kube-apiserver. It reads its
Kubernetes credentials where a pod would (/var/run/secrets/...): it runs in a private mount namespace
where a tmpfs over /run holds them, so nothing on the machine changes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from components.core.ports import free_ports
from infrastructure.apiserver.build import BuildError
from infrastructure.apiserver.server import ApiServer
from infrastructure.images.programs import build_kfp_backend
from infrastructure.local.object_store import ObjectStore
from infrastructure.local.procs import (
    ProcessRecord,
    log_tail,
    spawn,
    start_ticks,
    stop,
    wait_until,
)
from infrastructure.local.stack import EXIT_OK, down, up
from testing.mariadb import MariaDB, MariaDBUnavailable
from testing.stack import private_config

SA_DIR = "/run/secrets/kubernetes.io/serviceaccount"


class KfpUnavailable(RuntimeError):
    """The KFP API server cannot be built or started here; the message says why."""


@dataclass(frozen=True)
class KfpServer:
    url: str
    namespace: str


@contextlib.contextmanager
def kfp_api_server(api: ApiServer, namespace: str = "lakehouse") -> Iterator[KfpServer]:
    """Start PostgreSQL and S3 (stack services), then the KFP API server against `api`; stop all after."""
    if not shutil.which("unshare") or os.geteuid() != 0:
        raise KfpUnavailable("the KFP API server needs root and unshare (util-linux) for a private /run")
    try:
        binary = build_kfp_backend(log=lambda line: None)["apiserver"]
    except BuildError as exc:
        raise KfpUnavailable(str(exc)) from None
    home = Path(tempfile.mkdtemp(prefix="lakehouse-kfp-", dir="/tmp"))
    home.chmod(0o711)
    config = private_config(home / "stack")
    stack = [ObjectStore(config)]
    records: list[ProcessRecord] = []
    try:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            if up(config, stack) != EXIT_OK:
                raise KfpUnavailable(f"the S3 server did not start:\n{out.getvalue()}")
        http_port, rpc_port, db_port = free_ports(3)
        database = MariaDB(home / "mariadb", db_port)
        try:
            database.start()
        except MariaDBUnavailable as exc:
            raise KfpUnavailable(str(exc)) from None
        records.append(database.record)
        (home / "config.json").write_text(
            json.dumps(
                {
                    "DBDriverName": "mysql",
                    "DBConfig": {
                        "MySQLConfig": {
                            "Host": "127.0.0.1",
                            "Port": str(db_port),
                            "User": "root",
                            "Password": "",
                            "DBName": "mlpipeline",
                            "GroupConcatMaxLen": "4194304",
                        },
                        "ConMaxLifeTime": "120s",
                    },
                    "ObjectStoreConfig": {
                        "AccessKey": config.access_key,
                        "SecretAccessKey": config.secret_key,
                        "BucketName": "mlpipeline",
                        "PipelinePath": "pipelines",
                    },
                    "InitConnectionTimeout": "60s",
                    "DEFAULTPIPELINERUNNERSERVICEACCOUNT": "pipeline-runner",
                    "CacheEnabled": "false",
                }
            )
        )
        (home / "samples.json").write_text("[]")  # no sample pipelines
        (home / "token").write_text(api.token)
        shutil.copyfile(api.ca_file, home / "ca.crt")
        (home / "namespace").write_text(namespace)
        port = api.url.rsplit(":", 1)[1]
        env = {
            **os.environ,
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": port,
            "POD_NAMESPACE": namespace,
            "MINIO_SERVICE_SERVICE_HOST": "127.0.0.1",
            "MINIO_SERVICE_SERVICE_PORT": str(config.s3_port),
            # the visualization server is never called here; the API server only wants its address
            "ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_HOST": "127.0.0.1",
            "ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_PORT": "9",
        }
        script = (
            f"mount -t tmpfs tmpfs /run && mkdir -p {SA_DIR} && "
            f"cp {home}/token {home}/ca.crt {home}/namespace {SA_DIR}/ && "
            f"exec {binary} --config={home} --sampleconfig={home}/samples.json "
            f"--httpPortFlag=127.0.0.1:{http_port} "
            # its HTTP gateway dials "localhost" + this flag, so the flag is a bare ":port" (all interfaces)
            f"--rpcPortFlag=:{rpc_port} --logtostderr=true"
        )
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
        pid = spawn(command, home / "kfp.log", env=env, cwd=home)
        record = ProcessRecord(pid=pid, start_ticks=start_ticks(pid) or 0, port=http_port, command=command)
        records.append(record)
        url = f"http://127.0.0.1:{http_port}"

        def healthy() -> bool:
            """Its HTTP gateway answers, and the gRPC server behind it listens: the gateway answers healthz
            first, and a call forwarded before the gRPC port is open is a 503 (seen under load)."""
            import socket

            import httpx

            if httpx.get(f"{url}/apis/v2beta1/healthz", timeout=2).status_code != 200:
                return False
            with socket.socket() as sock:
                sock.settimeout(2)
                return sock.connect_ex(("127.0.0.1", rpc_port)) == 0

        alive = lambda: start_ticks(pid) == record.start_ticks  # noqa: E731
        if not wait_until(healthy, 180, alive):
            raise KfpUnavailable(f"the KFP API server did not answer:\n{log_tail(home / 'kfp.log')}")
        yield KfpServer(url=url, namespace=namespace)
    finally:
        for running in reversed(records):
            stop(running, signal.SIGTERM, grace=10)
        with contextlib.redirect_stdout(io.StringIO()):
            down(config, stack)
        shutil.rmtree(home, ignore_errors=True)
