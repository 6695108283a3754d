"""Build the images that are missing (BuildKit, one daemon for all) and import them into a running node."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from infrastructure.apiserver.build import BuildError
from infrastructure.images.base import BASE_IMAGE, Layout, build_base
from infrastructure.images.buildkit import (
    build_buildkit,
    build_command,
    host_ca_bundle,
    run_build,
    running_daemon,
)
from infrastructure.images.keys import image_key
from infrastructure.images.recipes import REPO_ROOT, ImageRecipe, recipes
from infrastructure.local.builds import cache_lock
from infrastructure.node.binaries import build_runc
from infrastructure.node.config import NodeConfig, load_config

Log = Callable[[str], None]

CACHE = REPO_ROOT / ".cache" / "images"


@dataclass(frozen=True)
class Built:
    """One image's OCI tarball, and whether this run built it (False: it was in the cache)."""

    recipe: ImageRecipe
    tarball: Path
    built: bool
    seconds: float


def tarball_path(cache: Path, recipe: ImageRecipe, key: str) -> Path:
    return cache / "oci" / f"{recipe.short}-{key}.tar"


def select(names: Sequence[str]) -> list[ImageRecipe]:
    """The recipes named (all of them when none is).

    Raises:
        BuildError: an unknown name; the message lists the known ones.
    """
    known = recipes()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BuildError(f"unknown image {', '.join(unknown)}: the images are {', '.join(known)}")
    return [known[name] for name in names] if names else list(known.values())


def build_images(names: Sequence[str] = (), cache: Path = CACHE, log: Log = print) -> list[Built]:
    """Build each named image whose key has no tarball yet; one buildkitd serves them all and is stopped.

    Raises:
        BuildError: a build failed; the message names the image and the failing step.
    """
    chosen = select(names)
    base = build_base(cache, log)
    planned: list[tuple[ImageRecipe, Path, Path]] = []
    for recipe in chosen:
        context = recipe.stage(cache, log)
        key = image_key(recipe.dockerfile, context, extra=_extra(recipe, base))
        planned.append((recipe, context, tarball_path(cache, recipe, key)))
    results = [Built(recipe, tarball, False, 0.0) for recipe, _, tarball in planned if tarball.exists()]
    missing = [(recipe, context, tarball) for recipe, context, tarball in planned if not tarball.exists()]
    if not missing:
        return results
    tools = build_buildkit(cache, log)
    runc = build_runc(load_config().cache, log)
    # one buildkitd per state folder: a second `build` (another shell, a test) waits for the first
    with cache_lock(cache, "buildkitd"), running_daemon(tools, runc, cache / "buildkitd", log) as daemon:
        for recipe, context, tarball in missing:
            if tarball.exists():  # built by the `build` this one waited for
                results.append(Built(recipe, tarball, False, 0.0))
                continue
            started = time.monotonic()
            log(f"image {recipe.short}: building {recipe.name} from {recipe.dockerfile.name}")
            tarball.parent.mkdir(parents=True, exist_ok=True)
            part = tarball.with_suffix(".part")
            args = {"BASE_IMAGE": base.name, **recipe.build_args}
            layouts = {base.name: (base.path, base.digest)}
            bundle = host_ca_bundle()
            secrets = {"ca-bundle": bundle} if bundle else {}
            command = build_command(
                daemon, context, recipe.dockerfile, part, recipe.name, args, layouts, secrets
            )
            what = f"image {recipe.short} ({recipe.name})"
            try:
                run_build(command, cache / "logs" / f"{recipe.short}.log", what)
                part.replace(tarball)
            finally:
                part.unlink(missing_ok=True)
            for stale in tarball.parent.glob(f"{recipe.short}-*.tar"):
                if stale != tarball:  # an earlier key's build: nothing will ask for it again
                    stale.unlink()
            seconds = time.monotonic() - started
            log(f"image {recipe.short}: built in {seconds:.0f} s ({tarball.stat().st_size >> 20} MiB)")
            results.append(Built(recipe, tarball, True, seconds))
    return results


def _extra(recipe: ImageRecipe, base: Layout) -> dict:
    return {"base": base.digest, "name": recipe.name, "args": recipe.build_args, "base_name": BASE_IMAGE}


def node_running(config: NodeConfig) -> bool:
    """Whether a node's containerd answers on its socket (`make cluster-up` ran and is up)."""
    return config.containerd_socket.is_socket()


def import_into_node(built: Sequence[Built], config: NodeConfig, log: Log = print) -> None:
    """Import the tarballs into the node's containerd (`k8s.io` namespace), skipping what is there.

    Raises:
        BuildError: ctr failed (the message names the command and its output).
    """
    from infrastructure.node.images import import_images

    ctr = config.cache / "bin" / "ctr"
    import_images(ctr, config.containerd_socket, [item.tarball for item in built], log)
