"""Trino for the stack: single node, server core plus the Iceberg plugin from Maven Central, on Java 25."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from infrastructure.local.config import CATALOG_NAME, CATALOG_SCOPE, PG_USER, REGION, write_private
from infrastructure.local.downloads import cached_download, maven_url, unpack_once
from infrastructure.local.java import find_java, java_version
from infrastructure.local.service import Launch, Log, Service, ServiceError

#: Trino 476 refuses to start on a Java older than 24.
MIN_JAVA = 24

JVM_FLAGS = [
    "-server",
    "-XX:+UseG1GC",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:ReservedCodeCacheSize=256M",
    "-XX:PerMethodRecompilationCutoff=10000",
    "-XX:PerBytecodeRecompilationCutoff=10000",
    "-XX:+EnableDynamicAgentLoading",
    "-XX:+UnlockDiagnosticVMOptions",
    "-XX:G1NumCollectionsKeepPinned=10000000",
    "-Djdk.attach.allowAttachSelf=true",
    "-Djdk.nio.maxCachedBufferSize=2000000",
    "-Dfile.encoding=UTF-8",
]


def _properties(values: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


class Trino(Service):
    """The `stack` query engine: dbt-trino and Feast use Iceberg tables through catalog `lakehouse`."""

    name = "trino"
    port_variable = "STACK_TRINO_PORT"
    # The first clean stop also writes the class-data archive (~150 MB), which takes a while.
    stop_grace = 60.0

    @property
    def version(self) -> str:
        return self.config.trino_version

    @property
    def install_dir(self) -> Path:
        return self.config.cache / f"trino-server-core-{self.version}" / f"trino-server-core-{self.version}"

    @property
    def plugin_source(self) -> Path:
        return self.config.cache / f"trino-iceberg-{self.version}" / f"trino-iceberg-{self.version}"

    @property
    def etc(self) -> Path:
        return self.dir / "etc"

    def prepare(self, log: Log) -> None:
        find_java(self.config.java_home, MIN_JAVA, f"Trino {self.version}")
        base, cache = self.config.maven_url, self.config.cache
        server = cached_download(
            maven_url(base, "io.trino", "trino-server-core", self.version, ".tar.gz"), cache, log
        )
        plugin = cached_download(
            maven_url(base, "io.trino", "trino-iceberg", self.version, ".zip"), cache, log
        )
        unpack_once(server, self.install_dir.parent)
        unpack_once(plugin, self.plugin_source.parent)
        plugins = self.dir / "plugin"
        plugins.mkdir(parents=True, exist_ok=True)
        link = plugins / "iceberg"
        if link.is_symlink() and link.resolve() != self.plugin_source.resolve():
            link.unlink()
        if not link.exists():
            link.symlink_to(self.plugin_source, target_is_directory=True)
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self._write_config()

    def _write_config(self) -> None:
        port = self.port
        server = {
            "coordinator": "true",
            "node-scheduler.include-coordinator": "true",
            "http-server.http.port": str(port),
            "http-server.log.enabled": "false",
            "log.enable-console": "true",
            "discovery.uri": f"http://127.0.0.1:{port}",
            "node.environment": "lakehouse_stack",
            "node.id": "lakehouse-stack-coordinator",
            "node.bind-ip": "127.0.0.1",
            "node.internal-address": "127.0.0.1",
            "plugin.dir": str(self.dir / "plugin"),
            "catalog.config-dir": str(self.etc / "catalog"),
            "query.max-memory": "512MB",
            "query.max-memory-per-node": "512MB",
            "task.concurrency": "2",
        }
        write_private(self.etc / "config.properties", _properties(server))
        write_private(self.etc / "log.properties", "io.trino=INFO\n")
        write_private(
            self.etc / "catalog" / f"{CATALOG_NAME}.properties", _properties(self.catalog_properties())
        )

    def catalog_properties(self) -> dict[str, str]:
        """Trino's Iceberg connector on the stack's REST catalog (OAuth2 client credentials) and S3.

        The same properties reach Apache Polaris on a cluster: only the values differ. Data files are read
        and written with the keys below, never with credentials vended by the catalog (MinIO has no STS).
        """
        cfg = self.config
        return {
            "connector.name": "iceberg",
            "iceberg.catalog.type": "rest",
            "iceberg.rest-catalog.uri": cfg.catalog_url,
            "iceberg.rest-catalog.warehouse": CATALOG_NAME,
            "iceberg.rest-catalog.security": "OAUTH2",
            "iceberg.rest-catalog.oauth2.server-uri": f"{cfg.catalog_url}/v1/oauth/tokens",
            "iceberg.rest-catalog.oauth2.credential": f"{cfg.catalog_client_id}:{cfg.catalog_client_secret}",
            "iceberg.rest-catalog.oauth2.scope": CATALOG_SCOPE,
            "iceberg.rest-catalog.vended-credentials-enabled": "false",
            "fs.native-s3.enabled": "true",
            "s3.endpoint": cfg.s3_endpoint,
            "s3.region": REGION,
            "s3.path-style-access": "true",
            "s3.aws-access-key": cfg.access_key,
            "s3.aws-secret-key": cfg.secret_key,
        }

    def launch(self) -> Launch:
        java = find_java(self.config.java_home, MIN_JAVA, f"Trino {self.version}")
        if not (self.install_dir / "lib").is_dir():
            raise ServiceError(f"Trino is not unpacked at {self.install_dir}; run `stack.sh up` again")
        command = [str(java), f"-Xmx{self.config.trino_heap}", *JVM_FLAGS]
        # Class-data sharing archive, written at the first clean exit: later starts load classes faster.
        archive = self.config.cache / f"trino-{self.version}-java{java_version(java)}.jsa"
        command += ["-XX:+AutoCreateSharedArchive", f"-XX:SharedArchiveFile={archive}", "-Xlog:cds*=off"]
        command += ["-cp", str(self.install_dir / "lib" / "*")]
        command += [
            f"-Dconfig={self.etc / 'config.properties'}",
            f"-Dlog.levels-file={self.etc / 'log.properties'}",
        ]
        command += ["io.trino.server.TrinoServer"]
        return Launch(command=command, cwd=self.dir / "data")

    def info(self) -> dict:
        with urllib.request.urlopen(f"{self.config.trino_url}/v1/info", timeout=3) as resp:
            return json.load(resp)

    def query(self, sql: str) -> list[tuple]:
        """Run one statement as user `lakehouse` and return its rows."""
        import trino

        conn = trino.dbapi.connect(host="127.0.0.1", port=self.port, user=PG_USER, catalog=CATALOG_NAME)
        try:
            cur = conn.cursor()
            cur.execute(sql)
            return cur.fetchall()
        finally:
            conn.close()

    def check(self) -> str:
        info = self.info()
        if info.get("starting", True):
            raise ServiceError("Trino is still starting")
        if self.query("SELECT 1") != [[1]]:
            raise ServiceError("Trino answered SELECT 1 with something else")
        return f"Trino {info['nodeVersion']['version']}, SELECT 1 ok"

    def after_start(self, log: Log) -> None:
        schemas = {row[0] for row in self.query(f"SHOW SCHEMAS FROM {CATALOG_NAME}")}
        if "information_schema" not in schemas:
            raise ServiceError(f"catalog {CATALOG_NAME} answered SHOW SCHEMAS with {sorted(schemas)}")
