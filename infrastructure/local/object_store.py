"""S3-compatible object storage for the stack: MinIO, built once from the Go module proxy, path-style."""

from __future__ import annotations

import os

from infrastructure.local.builds import go_install
from infrastructure.local.config import BUCKET, REGION
from infrastructure.local.service import Launch, Log, Service

MINIO_MODULE = "github.com/minio/minio"


def s3_client(endpoint: str, access_key: str, secret_key: str):
    """A boto3 S3 client for a path-style, loopback endpoint."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=3),
    )


class ObjectStore(Service):
    """Bucket `lakehouse`: Iceberg data under `warehouse/`, MLflow artifacts under `mlflow/`."""

    name = "s3"
    port_variable = "STACK_S3_PORT"

    @property
    def binary(self):
        version = self.config.minio_version
        return self.config.cache / f"minio-{version}" / "minio"

    def prepare(self, log: Log) -> None:
        go_install(
            MINIO_MODULE,
            self.config.minio_version,
            self.config.cache,
            self.config.logs / "minio-build.log",
            log,
            go=os.environ.get("STACK_GO"),
        )
        (self.dir / "data").mkdir(parents=True, exist_ok=True)

    def launch(self) -> Launch:
        command = [str(self.binary), "server", str(self.dir / "data"), "--address", f"127.0.0.1:{self.port}"]
        env = {
            **os.environ,
            "MINIO_ROOT_USER": self.config.access_key,
            "MINIO_ROOT_PASSWORD": self.config.secret_key,
            "MINIO_REGION": REGION,
            # no web console (it would need a second port), no update checks, no telemetry
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
            "MINIO_CALLHOME_ENABLE": "off",
        }
        return Launch(command=command, env=env, cwd=self.dir)

    def _client(self):
        return s3_client(self.config.s3_endpoint, self.config.access_key, self.config.secret_key)

    def check(self) -> str:
        buckets = [b["Name"] for b in self._client().list_buckets().get("Buckets", [])]
        return f"MinIO, buckets: {', '.join(buckets) or '(none)'}"

    def after_start(self, log: Log) -> None:
        client = self._client()
        names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if BUCKET not in names:
            log(f"s3: creating bucket {BUCKET}")
            client.create_bucket(Bucket=BUCKET)
