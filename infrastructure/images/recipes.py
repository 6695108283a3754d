"""The images built here: what each is, its Dockerfile, and the build context it is built from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from infrastructure.apiserver.build import BuildError

Log = Callable[[str], None]

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = Path(__file__).with_name("services")
#: Kubernetes names an image without a registry `docker.io/library/NAME`: the platform image is imported
#: under that name, so the manifests' `lakehouse-mlops:0.1.0` finds it with no registry to pull from.
DEFAULT_REGISTRY = "docker.io/library/"


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
    from components.settings import get_settings

    return qualified(get_settings("cluster").image)


def _repository(cache: Path, log: Log) -> Path:
    """The platform image's context: the repository, with the source files `COPY data/` puts in the image."""
    if not (REPO_ROOT / "data").is_dir():
        raise BuildError(
            f"no data/ in {REPO_ROOT} to put in the platform image: run `.venv/bin/lakehouse data generate`"
        )
    return REPO_ROOT


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
    ]
    return {recipe.short: recipe for recipe in found}
