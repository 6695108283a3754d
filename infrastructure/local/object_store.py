"""S3-compatible object storage for the stack: s3proxy (Maven Central) on a filesystem, path-style."""

from __future__ import annotations

import os

from infrastructure.local.config import BUCKET, REGION
from infrastructure.local.downloads import cached_download, maven_url
from infrastructure.local.java import find_java, java_version
from infrastructure.local.service import Launch, Log, Service


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
    def jar_url(self) -> str:
        version = self.config.s3proxy_version
        return maven_url(self.config.maven_url, "org.gaul", "s3proxy", version, "-jar-with-dependencies.jar")

    @property
    def properties_path(self):
        return self.dir / "s3proxy.conf"

    def prepare(self, log: Log) -> None:
        find_java(self.config.java_home, 17, f"s3proxy {self.config.s3proxy_version}")
        cached_download(self.jar_url, self.config.cache, log)
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        lines = {
            "s3proxy.endpoint": self.config.s3_endpoint,
            "s3proxy.authorization": "aws-v2-or-v4",
            "s3proxy.identity": self.config.access_key,
            "s3proxy.credential": self.config.secret_key,
            # Trino's AWS SDK sends x-amz-optional-object-attributes when listing; s3proxy would refuse it.
            "s3proxy.ignore-unknown-headers": "true",
            "jclouds.provider": "filesystem-nio2",
            "jclouds.filesystem.basedir": str(self.dir / "data"),
            "jclouds.regions": REGION,
        }
        text = "".join(f"{key}={value}\n" for key, value in lines.items())
        fd = os.open(self.properties_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)

    def launch(self) -> Launch:
        java = find_java(self.config.java_home, 17, "s3proxy")
        jar = self.config.cache / self.jar_url.rsplit("/", 1)[1]
        command = [str(java), "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
        archive = self.config.cache / f"s3proxy-{self.config.s3proxy_version}-java{java_version(java)}.jsa"
        command += ["-XX:+AutoCreateSharedArchive", f"-XX:SharedArchiveFile={archive}", "-Xlog:cds*=off"]
        command += ["-Dfile.encoding=UTF-8", "-jar", str(jar), "--properties", str(self.properties_path)]
        return Launch(command=command, cwd=self.dir)

    def _client(self):
        return s3_client(self.config.s3_endpoint, self.config.access_key, self.config.secret_key)

    def check(self) -> str:
        buckets = [b["Name"] for b in self._client().list_buckets().get("Buckets", [])]
        return f"buckets: {', '.join(buckets) or '(none)'}"

    def after_start(self, log: Log) -> None:
        client = self._client()
        names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if BUCKET not in names:
            log(f"s3: creating bucket {BUCKET}")
            client.create_bucket(Bucket=BUCKET)
