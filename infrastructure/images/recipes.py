"""The images built here: what each is, its Dockerfile, and the build context it is built from."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from components.core.settings import REPO_ROOT
from infrastructure.apiserver.build import BuildError
from infrastructure.local.service import ServiceError

Log = Callable[[str], None]

SERVICES = Path(__file__).with_name("services")
#: Kubernetes names an image without a registry `docker.io/library/NAME`: the platform image is imported
#: under that name, so the manifests' `lakehouse-mlops:0.1.0` finds it with no registry to pull from.
DEFAULT_REGISTRY = "docker.io/library/"
#: The JDK the `stack` profile runs Trino and the REST catalog on, copied into their images at the same path.
TRINO_JDK = Path("/usr/lib/jvm/temurin-25-jdk-amd64")


def qualified(name: str) -> str:
    """`name` as containerd's CRI looks it up (`lakehouse-mlops:0.1.0` -> `docker.io/library/...`)."""
    first = name.split("/", 1)[0]
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        return name
    return f"docker.io/{name}" if "/" in name else DEFAULT_REGISTRY + name


@dataclass(frozen=True)
class ImageRecipe:
    """One image: `stage(cache, log)` returns its build context folder (the repository, or a folder of
    staged binaries and archives under the cache)."""

    short: str
    name: str
    dockerfile: Path
    stage: Callable[[Path, Log], Path]
    what: str
    stands_in_for: str = ""
    build_args: dict[str, str] = field(default_factory=dict)


def platform_image_name() -> str:
    """The `image` setting of the `cluster` profile (LAKEHOUSE_IMAGE overrides it), fully qualified."""
    from components.core.settings import get_settings

    return qualified(get_settings("cluster").image)


def _repository(cache: Path, log: Log) -> Path:
    """The platform image's context: the repository (code only: `.dockerignore` leaves the exports out)."""
    return REPO_ROOT


def stage_context(cache: Path, short: str, entries: Mapping[str, Path]) -> Path:
    """A build context under `<cache>/contexts/<short>/`: `entries` maps a name in it to a file or folder
    here, hard-linked when they share a disk (a JDK or an archive is not copied again), else copied."""
    folder = cache / "contexts" / short
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, source in entries.items():
        target = folder / name
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(str(source), str(target))
    return folder


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _stack_config():
    from infrastructure.local.config import load_config

    return load_config()


def _minio(cache: Path, log: Log) -> Path:
    """The MinIO binary the `stack` profile builds (Go module proxy, once), beside its Dockerfile."""
    from infrastructure.local.builds import go_install
    from infrastructure.local.object_store import MINIO_MODULE

    stack = _stack_config()
    try:
        logs = stack.logs / "minio-build.log"
        binary = go_install(MINIO_MODULE, stack.minio_version, stack.cache, logs, log)
    except ServiceError as exc:
        raise BuildError(f"image minio: {exc}") from None
    return stage_context(cache, "minio", {"minio": binary})


#: MinIO's client at the newest version the Go module proxy here serves (upstream's image: a later release).
MC_MODULE = "github.com/minio/mc"
MC_VERSION = "v0.0.0-20250313080218-cf909e1063a9"


def _minio_client(cache: Path, log: Log) -> Path:
    """`mc` built once from the Go module proxy, beside its Dockerfile."""
    from infrastructure.local.builds import go_install

    stack = _stack_config()
    try:
        binary = go_install(MC_MODULE, MC_VERSION, stack.cache, stack.logs / "mc-build.log", log)
    except ServiceError as exc:
        raise BuildError(f"image minio-client: {exc}") from None
    return stage_context(cache, "minio-client", {"mc": binary})


def _trino(cache: Path, log: Log) -> Path:
    """The `stack` profile's Trino archives and its CLI (Maven Central, once) and its JDK, beside the
    commands the image adds (run-trino, health-check)."""
    from infrastructure.local.downloads import DownloadError, cached_download, maven_url
    from infrastructure.local.java import find_java
    from infrastructure.local.trino_server import MIN_JAVA

    stack = _stack_config()
    try:
        java = find_java(stack.java_home, MIN_JAVA, f"the Trino {stack.trino_version} image")
        archives = {}
        for name, artifact, suffix in (
            ("trino-server.tar.gz", "trino-server-core", ".tar.gz"),
            ("trino-iceberg.zip", "trino-iceberg", ".zip"),
            ("trino-cli.jar", "trino-cli", "-executable.jar"),
        ):
            url = maven_url(stack.maven_url, "io.trino", artifact, stack.trino_version, suffix)
            archives[name] = cached_download(url, stack.cache, log)
    except (ServiceError, DownloadError) as exc:
        raise BuildError(f"image trino: {exc}") from None
    if java.parent.parent.resolve() != TRINO_JDK:
        raise BuildError(f"image trino: the JDK must be Temurin 25 at {TRINO_JDK} (found {java})")
    scripts = {name: SERVICES / "trino" / name for name in ("run-trino", "health-check")}
    entries = {**archives, **scripts, "jdk": TRINO_JDK}
    return stage_context(cache, "trino", entries)


def _rest_catalog(cache: Path, log: Log) -> Path:
    """The `stack` profile's REST catalog server as it builds it (jars resolved once, launcher compiled)."""
    from infrastructure.local.rest_catalog import RestCatalog

    server = RestCatalog(_stack_config())
    try:
        server.prepare(log)
    except ServiceError as exc:
        raise BuildError(f"image rest-catalog: {exc}") from None
    entries = {"jdk": TRINO_JDK, "lib": server.build_dir / "lib", "classes": server.build_dir / "classes"}
    return stage_context(cache, "rest-catalog", entries)


def _service_folder(short: str) -> Callable[[Path, Log], Path]:
    """A service whose context is its folder under `services/` (a Dockerfile and an entry point)."""
    return lambda cache, log: SERVICES / short


def recipes() -> dict[str, ImageRecipe]:
    """Every image by its short name, most valuable first (the order `build` with no names follows)."""
    found = [
        ImageRecipe(
            "platform",
            platform_image_name(),
            REPO_ROOT / "Dockerfile",
            _repository,
            "the platform: KFP components, model server, MLflow, Feast server, Polaris setup Job",
        ),
        ImageRecipe(
            "postgres",
            "localhost/postgres:15-bookworm",
            SERVICES / "postgres" / "Dockerfile",
            _service_folder("postgres"),
            "Debian's PostgreSQL 15 with upstream's entry point contract, user 10001",
            "docker.io/library/postgres",
        ),
        ImageRecipe(
            "redis",
            "localhost/redis:7.0-bookworm",
            SERVICES / "redis" / "Dockerfile",
            _service_folder("redis"),
            "Debian's Redis 7.0; options as arguments start redis-server; user 10001",
            "docker.io/library/redis",
        ),
        ImageRecipe(
            "minio",
            "localhost/minio:stack",
            SERVICES / "minio" / "Dockerfile",
            _minio,
            "the `stack` profile's MinIO (Go module proxy); `minio` is the entry point; user 10001",
            "quay.io/minio/minio",
        ),
        ImageRecipe(
            "minio-client",
            "localhost/minio-client:stack",
            SERVICES / "minio-client" / "Dockerfile",
            _minio_client,
            "MinIO's `mc` (Go module proxy) for the object store's setup Job; user 10001",
            "quay.io/minio/mc",
        ),
        ImageRecipe(
            "rest-catalog",
            "localhost/iceberg-rest-catalog:stack",
            SERVICES / "rest-catalog" / "Dockerfile",
            _rest_catalog,
            "the `stack` profile's Iceberg REST catalog server (REST_*/CATALOG_* settings, not Polaris's)",
            "docker.io/apache/polaris",
        ),
        ImageRecipe(
            "trino",
            "localhost/trino:476-stack",
            SERVICES / "trino" / "Dockerfile",
            _trino,
            "the `stack` profile's Trino 476 with its Iceberg plugin on Temurin 25; user 10001",
            "docker.io/trinodb/trino",
        ),
    ]
    # images of their own modules: ML Metadata's server and its MariaDB; Kubeflow Pipelines, Argo, KServe
    from infrastructure.images.metadata import metadata_recipes
    from infrastructure.images.programs import program_recipes

    found += metadata_recipes() + program_recipes()
    return {recipe.short: recipe for recipe in found}
