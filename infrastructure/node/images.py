"""Images a node needs without a registry: built here, packed with umoci, imported into containerd."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from infrastructure.apiserver.build import BuildError
from infrastructure.local.builds import cache_lock, tree_digest

Log = Callable[[str], None]

PAUSE_SOURCE = Path(__file__).with_name("pause.c")
#: The sandbox image containerd pins (kubelet never pulls it: there is no registry).
PAUSE_IMAGE = "localhost/pause:3.10"
COREDNS_IMAGE = "localhost/coredns:v1.13.1"
#: A small image with a shell and network probes (Debian's static busybox), for debugging pods and tests.
BUSYBOX_IMAGE = "localhost/busybox:1.35"


@dataclass(frozen=True)
class ImageSpec:
    """An image of a few files: `files` maps a path inside to a file here, `links` a path to its target."""

    name: str
    files: Mapping[str, Path]
    entrypoint: Sequence[str] = ()
    links: Mapping[str, str] = field(default_factory=dict)

    def key(self) -> str:
        """Content key: the files' bytes, their places, the links and the entrypoint."""
        recipe = json.dumps(
            [self.name, sorted(self.files), sorted(self.links.items()), list(self.entrypoint)]
        )
        return tree_digest(list(self.files.values())) + "-" + hashlib.sha256(recipe.encode()).hexdigest()[:8]


def _run(command: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"`{' '.join(command)}` failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def build_pause(cache: Path, log: Log) -> Path:
    """The pause program, compiled once (`gcc -Os -static`), keyed by its source."""
    target = cache / f"pause-{tree_digest([PAUSE_SOURCE])}" / "pause"
    if target.exists():
        return target
    with cache_lock(cache, "pause"):
        if not target.exists():
            log("pause: compiling the sandbox program (gcc -Os -static)")
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_suffix(".part")
            _run(["gcc", "-Os", "-static", "-s", "-o", str(part), str(PAUSE_SOURCE)])
            part.replace(target)
    return target


def is_static(binary: Path) -> bool:
    """True when `binary` is an ELF executable without a program interpreter (needs no shared libraries)."""
    data = binary.read_bytes()[:65536]
    if data[:5] != b"\x7fELF\x02":  # 64-bit ELF
        return False
    (program_headers,) = struct.unpack_from("<Q", data, 0x20)
    entry_size, count = struct.unpack_from("<HH", data, 0x36)
    for index in range(count):
        (kind,) = struct.unpack_from("<I", data, program_headers + index * entry_size)
        if kind == 3:  # PT_INTERP
            return False
    return True


def busybox_spec(busybox: Path) -> ImageSpec:
    """Debian's static busybox with a link per applet (`sh`, `nc`, `nslookup`, `cat`...)."""
    listing = _run([str(busybox), "--list-full"]).split()
    links = {f"/{path}": "/bin/busybox" for path in listing if path != "bin/busybox"}
    return ImageSpec(BUSYBOX_IMAGE, {"/bin/busybox": busybox}, links=links)


def pack(spec: ImageSpec, cache: Path, log: Log) -> Path:
    """An OCI layout tarball of `spec`, built once with umoci (cached under `cache/images/` by content).

    The index names the image in full (`org.opencontainers.image.ref.name` and `io.containerd.image.name`),
    which `ctr images import` takes as the image's name.
    """
    repo, tag = spec.name.rsplit(":", 1)
    target = cache / "images" / f"{repo.rsplit('/', 1)[1]}-{tag}-{spec.key()}.tar"
    if target.exists():
        return target
    with cache_lock(cache, "images"):
        if target.exists():
            return target
        log(f"image {spec.name}: packing with umoci")
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".image-", dir=target.parent))
        try:
            layout, bundle, image = scratch / "layout", scratch / "bundle", f"{scratch / 'layout'}:{tag}"
            _run(["umoci", "init", "--layout", str(layout)])
            _run(["umoci", "new", "--image", image])
            _run(["umoci", "unpack", "--image", image, str(bundle)])
            rootfs = bundle / "rootfs"
            for inside, source in spec.files.items():
                destination = rootfs / inside.lstrip("/")
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, destination)
                destination.chmod(0o755)
            for inside, link_target in spec.links.items():
                destination = rootfs / inside.lstrip("/")
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.symlink_to(link_target)
            (rootfs / "tmp").mkdir(mode=0o1777, exist_ok=True)
            _run(["umoci", "repack", "--image", image, str(bundle)])
            if spec.entrypoint:
                entry = [f"--config.entrypoint={part}" for part in spec.entrypoint]
                _run(["umoci", "config", "--image", image, *entry])
            _run(["umoci", "gc", "--layout", str(layout)])
            index_path = layout / "index.json"
            index = json.loads(index_path.read_text())
            for manifest in index["manifests"]:
                annotations = manifest.setdefault("annotations", {})
                annotations["org.opencontainers.image.ref.name"] = spec.name
                annotations["io.containerd.image.name"] = spec.name
            index_path.write_text(json.dumps(index))
            part = target.with_suffix(".part")
            _run(["tar", "-C", str(layout), "-cf", str(part), "."])
            part.replace(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return target


def tar_member(tarball: Path, name: str) -> bytes:
    """A file of a tarball, stored as `name` or `./name` (umoci's layouts are tarred from `.`, BuildKit's
    OCI exports are not)."""
    with tarfile.open(tarball) as archive:
        for candidate in (name, f"./{name}"):
            try:
                member = archive.extractfile(candidate)
            except KeyError:
                continue
            if member is not None:
                return member.read()
    raise BuildError(f"{tarball} holds no {name}: it is not an OCI image layout")


def import_images(ctr: Path, socket: Path, tarballs: Sequence[Path], log: Log) -> None:
    """`ctr images import` each tarball into containerd's `k8s.io` namespace (the one the CRI uses), unless an
    image of that content is already there."""
    base = [str(ctr), "--address", str(socket.absolute()), "--namespace", "k8s.io"]
    present = _run([*base, "images", "list", "--quiet"]).split()
    for tarball in tarballs:
        manifests = json.loads(tar_member(tarball, "index.json"))["manifests"]
        names = [manifest["annotations"]["io.containerd.image.name"] for manifest in manifests]
        marker = socket.parent / "imported" / tarball.name
        if marker.exists() and all(name in present for name in names):
            continue
        log(f"importing {', '.join(names)} into containerd")
        _run([*base, "images", "import", str(tarball)])
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
