"""The Debian bookworm + Python 3.11 base image: debootstrap, packed by umoci, cached by its recipe."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from infrastructure.apiserver.build import BuildError
from infrastructure.local.builds import _niced, cache_lock, run_logged
from infrastructure.local.service import ServiceError, install_debian_package

Log = Callable[[str], None]

#: Debian's Python 3.11 lives here (the `python:3.11-slim` images' own build is /usr/local/bin/python).
BASE_IMAGE = "localhost/debian-python:3.11-bookworm"
SUITE = "bookworm"
#: `passwd` brings useradd/groupadd (not in minbase), which the platform image's last stage runs.
PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates", "passwd")
#: The image's configuration: what `docker run` of the upstream Python images would also find.
ENVIRONMENT = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
#: Bumped when the steps below change in a way the recipe's fields do not show.
RECIPE_REVISION = 2
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


@dataclass(frozen=True)
class Layout:
    """An OCI image layout on disk: its folder, the image's name and its manifest digest."""

    path: Path
    name: str
    digest: str


def base_recipe(packages: Sequence[str] = PACKAGES) -> dict:
    """Everything the base image's content follows from; its digest is the cache key (the mirror is left out:
    any mirror of the suite serves the same packages)."""
    return {
        "name": BASE_IMAGE,
        "suite": SUITE,
        "variant": "minbase",
        "packages": sorted(packages),
        "environment": ENVIRONMENT,
        "revision": RECIPE_REVISION,
    }


def recipe_key(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def debian_mirror(sources: Sequence[Path] = APT_SOURCES, suite: str = SUITE) -> str:
    """The host's Debian mirror for `suite`: the first `deb URL suite` line or deb822 stanza naming it.

    Raises:
        BuildError: no apt source lists `suite`; the message says which files were read.
    """
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            files += sorted(p for p in source.iterdir() if p.suffix in (".list", ".sources"))
        elif source.is_file():
            files.append(source)
    for path in files:
        text = path.read_text(errors="replace")
        for line in text.splitlines():
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 3 and parts[0] == "deb":
                words = [word for word in parts[1:] if not word.startswith("[")]
                if len(words) >= 2 and words[1] == suite:
                    return words[0]
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, flags=re.M))
            types, suites = fields.get("Types", "").split(), fields.get("Suites", "").split()
            if "deb" in types and suite in suites and fields.get("URIs"):
                return fields["URIs"].split()[0]
    read = ", ".join(str(path) for path in files) or "none"
    raise BuildError(f"no apt source for Debian {suite} (read: {read}); add one to /etc/apt/sources.list.d/")


def _tools(log: Log) -> None:
    try:
        install_debian_package("debootstrap", "debootstrap", log)
        install_debian_package("umoci", "umoci", log)
    except ServiceError as exc:
        raise BuildError(str(exc)) from None


def manifest_digest(layout: Path) -> str:
    """The digest of the (only) manifest in an OCI layout's index."""
    manifests = json.loads((layout / "index.json").read_text())["manifests"]
    return manifests[0]["digest"]


def name_layout(layout: Path, name: str) -> None:
    """Name every manifest of the layout's index `name` (what BuildKit and `ctr images import` read)."""
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text())
    for manifest in index["manifests"]:
        annotations = manifest.setdefault("annotations", {})
        annotations["org.opencontainers.image.ref.name"] = name
        annotations["io.containerd.image.name"] = name
    index_path.write_text(json.dumps(index))


def build_base(cache: Path, log: Log = print) -> Layout:
    """The base image as an OCI layout in `<cache>/base-<key>/`, built once per recipe (~1-2 min cold).

    Raises:
        BuildError: debootstrap or umoci failed (the step is named, with the log's last lines), or no Debian
            mirror is configured.
    """
    key = recipe_key(base_recipe())
    target = cache / f"base-{key}"
    if (target / "index.json").exists():
        return Layout(target, BASE_IMAGE, manifest_digest(target))
    _tools(log)
    mirror = debian_mirror()
    with cache_lock(cache, "base"):
        if (target / "index.json").exists():
            return Layout(target, BASE_IMAGE, manifest_digest(target))
        started = time.monotonic()
        log(f"base image {BASE_IMAGE}: debootstrap {SUITE} from {mirror}, umoci (once per recipe)")
        scratch = Path(tempfile.mkdtemp(prefix=".base-", dir=cache))
        log_path = cache / "base.log"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            layout, bundle = scratch / "layout", scratch / "bundle"
            image = f"{layout}:latest"

            def step(what: str, command: list[str]) -> None:
                try:
                    run_logged(command, log_path, env, f"base image: {what}")
                except ServiceError as exc:
                    raise BuildError(str(exc)) from None

            step("umoci init", ["umoci", "init", "--layout", str(layout)])
            step("umoci new", ["umoci", "new", "--image", image])
            step("umoci unpack", ["umoci", "unpack", "--image", image, str(bundle)])
            rootfs = bundle / "rootfs"
            include = ",".join(sorted(PACKAGES))
            debootstrap = ["debootstrap", "--variant=minbase", f"--include={include}", SUITE]
            step("debootstrap", _niced([*debootstrap, str(rootfs), mirror]))
            _trim(rootfs)
            step("umoci repack", ["umoci", "repack", "--image", image, str(bundle)])
            config = [f"--config.env={name}={value}" for name, value in ENVIRONMENT.items()]
            step("umoci config", ["umoci", "config", "--image", image, *config, "--config.cmd=python3"])
            step("umoci gc", ["umoci", "gc", "--layout", str(layout)])
            name_layout(layout, BASE_IMAGE)
            if target.exists():
                shutil.rmtree(target)
            layout.rename(target)
        finally:
            subprocess.run(["umount", "-R", str(scratch / "bundle" / "rootfs" / "proc")], capture_output=True)
            shutil.rmtree(scratch, ignore_errors=True)
        log(f"base image: built in {time.monotonic() - started:.0f} s")
    return Layout(target, BASE_IMAGE, manifest_digest(target))


def _trim(rootfs: Path) -> None:
    """Drop what an image should not carry: downloaded packages, apt lists, device nodes, logs."""
    for folder in ("var/cache/apt/archives", "var/lib/apt/lists", "dev", "var/log"):
        for entry in (rootfs / folder).rglob("*"):
            if entry.is_file() or entry.is_symlink() or not entry.is_dir():
                entry.unlink(missing_ok=True)
    for entry in (rootfs / "dev").iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
