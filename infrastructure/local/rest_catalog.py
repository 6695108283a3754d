"""The stack's Iceberg REST catalog: Iceberg's REST adapter over a JDBC catalog in PostgreSQL, S3FileIO on
MinIO, OAuth2 client credentials; jars from Maven Central, a three-class launcher compiled once."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

from infrastructure.local.builds import maven_jars, tree_digest
from infrastructure.local.config import BUCKET, CATALOG_NAME, CATALOG_SCOPE, PG_USER, REGION
from infrastructure.local.java import find_java, java_version
from infrastructure.local.service import Launch, Log, Service, ServiceError

#: The Maven project (pom.xml) and the launcher's sources.
PROJECT = Path(__file__).with_name("rest_catalog")
MAIN_CLASS = "lakehouse.catalog.RestCatalogServer"
MIN_JAVA = 17


def project_files() -> list[Path]:
    return [PROJECT / "pom.xml", *sorted((PROJECT / "src").rglob("*.java"))]


def fetch_token(catalog_url: str, client_id: str, client_secret: str, scope: str, timeout: float = 5) -> str:
    """An access token from `<catalog_url>/v1/oauth/tokens` (OAuth2 client credentials)."""
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
    data = urllib.parse.urlencode({**form, "scope": scope}).encode()
    request = urllib.request.Request(f"{catalog_url}/v1/oauth/tokens", data=data, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.load(resp)["access_token"]


class RestCatalog(Service):
    """Every client's Iceberg catalog in the `stack` profile: pyiceberg, dlt, Trino, Feast (Iceberg REST)."""

    name = "catalog"
    port_variable = "STACK_REST_PORT"

    @property
    def build_dir(self) -> Path:
        """`<cache>/iceberg-rest-<digest of pom and sources>/`: `lib/` (jars) and `classes/`."""
        return self.config.cache / f"iceberg-rest-{tree_digest(project_files())}"

    def _java(self) -> Path:
        return find_java(self.config.java_home, MIN_JAVA, "the Iceberg REST catalog server")

    def prepare(self, log: Log) -> None:
        java = self._java()
        cfg, build_log = self.config, self.config.logs / "catalog-build.log"
        pom = PROJECT / "pom.xml"
        lib = maven_jars(pom, self.build_dir / "lib", cfg.cache, cfg.maven_url, build_log, log)
        classes = self.build_dir / "classes"
        if not (classes / ".complete").exists():
            javac = java.parent / "javac"
            if not javac.exists():
                raise ServiceError(f"{javac} not found: the catalog's launcher is compiled by a JDK's javac")
            sources = [str(p) for p in project_files() if p.suffix == ".java"]
            command = [str(javac), "--release", str(MIN_JAVA), "-cp", f"{lib}/*", "-d", str(classes)]
            command += sources
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise ServiceError(f"compiling the REST catalog launcher failed:\n{done.stderr[-3000:]}")
            (classes / ".complete").write_text("\n".join(sources) + "\n")
        self.dir.mkdir(parents=True, exist_ok=True)

    def launch(self) -> Launch:
        cfg = self.config
        java = self._java()
        # Only this server's settings: CATALOG_* and REST_* of the caller's environment would leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CATALOG_", "REST_", "AWS_"))}
        env |= {
            "CATALOG_URI": f"jdbc:postgresql://127.0.0.1:{cfg.pg_port}/iceberg_catalog",
            "CATALOG_JDBC_USER": PG_USER,
            "CATALOG_CLIENTS": "4",
            "CATALOG_WAREHOUSE": cfg.warehouse,
            "CATALOG_IO__IMPL": "org.apache.iceberg.aws.s3.S3FileIO",
            "CATALOG_S3_ENDPOINT": cfg.s3_endpoint,
            "CATALOG_S3_PATH__STYLE__ACCESS": "true",
            "AWS_ACCESS_KEY_ID": cfg.access_key,
            "AWS_SECRET_ACCESS_KEY": cfg.secret_key,
            "AWS_REGION": REGION,
            "REST_HOST": "127.0.0.1",
            "REST_PORT": str(self.port),
            "REST_CATALOG_NAME": CATALOG_NAME,
            "REST_CLIENT_ID": cfg.catalog_client_id,
            "REST_CLIENT_SECRET": cfg.catalog_client_secret,
            "REST_SCOPE": CATALOG_SCOPE,
            "REST_TOKEN_TTL_SECONDS": str(cfg.catalog_token_ttl),
        }
        command = [str(java), "-Xmx384m", "-XX:+UseSerialGC", "-Dfile.encoding=UTF-8"]
        archive = self.build_dir / f"java{java_version(java)}.jsa"
        command += ["-XX:+AutoCreateSharedArchive", f"-XX:SharedArchiveFile={archive}", "-Xlog:cds*=off"]
        command += ["-cp", f"{self.build_dir / 'classes'}:{self.build_dir / 'lib'}/*", MAIN_CLASS]
        return Launch(command=command, env=env, cwd=self.dir)

    def check(self) -> str:
        cfg = self.config
        token = fetch_token(cfg.catalog_url, cfg.catalog_client_id, cfg.catalog_client_secret, CATALOG_SCOPE)
        request = urllib.request.Request(
            f"{cfg.catalog_url}/v1/config", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            endpoints = json.load(resp).get("endpoints", [])
        return f"Iceberg REST, {len(endpoints)} endpoints, warehouse s3://{BUCKET}/warehouse"
