"""BuildKit (buildkitd + buildctl) built once from the Go module proxy, and a buildkitd started on demand."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from infrastructure.apiserver.build import BuildError
from infrastructure.local.builds import _niced, cache_lock, find_go, run_logged
from infrastructure.local.service import ServiceError

Log = Callable[[str], None]

BUILDKIT_MODULE, BUILDKIT_VERSION = "github.com/moby/buildkit", "v0.34.2"
BUILDKIT_COMMANDS = ("buildkitd", "buildctl")
#: Bounds of buildkitd's build cache (MB): what it keeps, the disk it leaves free, the most it holds.
GC_KEEP_MB, GC_MIN_FREE_MB, GC_MAX_MB = 2000, 10000, 6000
#: How long buildkitd may take to answer `buildctl debug workers` after it starts.
START_TIMEOUT = 60.0


def module_files(version: str = BUILDKIT_VERSION) -> dict[str, str]:
    """go.mod and tools.go of a wrapper module that builds buildkitd and buildctl at `version`.

    `go install module@version` refuses BuildKit (its go.mod has `replace` lines), so a module of our own
    requires it and imports the two commands; `go mod tidy` then resolves the rest.
    """
    imports = "".join(f'\t_ "{BUILDKIT_MODULE}/cmd/{command}"\n' for command in BUILDKIT_COMMANDS)
    return {
        "go.mod": f"module lakehouse.local/buildkit\n\ngo 1.26\n\nrequire {BUILDKIT_MODULE} {version}\n",
        "tools.go": f"//go:build tools\n\npackage tools\n\nimport (\n{imports})\n",
    }


@dataclass(frozen=True)
class BuildKit:
    """The two programs: the daemon and its client."""

    buildkitd: Path
    buildctl: Path


def build_buildkit(cache: Path, log: Log = print, version: str = BUILDKIT_VERSION) -> BuildKit:
    """buildkitd and buildctl, built once into `<cache>/buildkit-<version>/` (never rebuilt when present).

    Cold, on two busy cores: about 6 minutes (module download and `go build`); Go's build cache makes a
    rebuild a link step.

    Raises:
        BuildError: no Go toolchain, or the build failed (the message ends with the log's last lines).
    """
    folder = cache / f"buildkit-{version}"
    found = BuildKit(*(folder / command for command in BUILDKIT_COMMANDS))
    if found.buildkitd.is_file() and found.buildctl.is_file():
        return found
    with cache_lock(cache, folder.name):
        if found.buildkitd.is_file() and found.buildctl.is_file():
            return found
        try:
            go = find_go(os.environ.get("STACK_GO"))
        except ServiceError as exc:
            raise BuildError(str(exc)) from None
        module = folder / "module"
        module.mkdir(parents=True, exist_ok=True)
        for name, text in module_files(version).items():
            (module / name).write_text(text)
        log_path = folder / "build.log"
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}
        started = time.monotonic()
        log(f"buildkit: building {BUILDKIT_MODULE}@{version} (once; ~6 min cold on two cores)")
        part = folder / ".part"
        shutil.rmtree(part, ignore_errors=True)
        packages = [f"{BUILDKIT_MODULE}/cmd/{command}" for command in BUILDKIT_COMMANDS]
        ldflags = f"-s -w -X {BUILDKIT_MODULE}/version.Version={version}"
        try:
            run_logged(_niced([go, "mod", "tidy"]), log_path, env, "go mod tidy of BuildKit", cwd=module)
            build = [go, "build", "-trimpath", f"-ldflags={ldflags}", "-o", f"{part}/", *packages]
            run_logged(_niced(build), log_path, env, f"building BuildKit {version}", cwd=module)
        except ServiceError as exc:
            raise BuildError(str(exc)) from None
        for command in BUILDKIT_COMMANDS:
            (part / command).replace(folder / command)
        part.rmdir()
        log(f"buildkit: built in {time.monotonic() - started:.0f} s")
    return found


def daemon_command(buildkitd: Path, runc: Path, root: Path, socket: Path) -> list[str]:
    """buildkitd with only the OCI worker (running `runc`, overlayfs snapshots, the host's network)."""
    return [
        str(buildkitd),
        "--root",
        str(root),
        "--addr",
        f"unix://{socket}",
        "--oci-worker=true",
        "--containerd-worker=false",
        f"--oci-worker-binary={runc}",
        "--oci-worker-snapshotter=overlayfs",
        "--oci-worker-net=host",
        "--oci-worker-gc=true",
        # reserved, minimum free disk and maximum of its build cache, MB: the images themselves are kept as
        # OCI archives beside it, so the cache only speeds rebuilds (left alone, it grew past 20 GB here)
        f"--oci-worker-gc-keepstorage={GC_KEEP_MB},{GC_MIN_FREE_MB},{GC_MAX_MB}",
    ]


@dataclass(frozen=True)
class Daemon:
    """A running buildkitd: its socket and the client that talks to it."""

    socket: Path
    buildctl: Path
    pid: int

    def buildctl_command(self, *args: str) -> list[str]:
        return [str(self.buildctl), "--addr", f"unix://{self.socket}", *args]


def _ready(buildctl: Path, socket: Path) -> bool:
    command = [str(buildctl), "--addr", f"unix://{socket}", "debug", "workers"]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


@contextlib.contextmanager
def running_daemon(tools: BuildKit, runc: Path, state: Path, log: Log = print) -> Iterator[Daemon]:
    """Start buildkitd (niced, as root: the OCI worker mounts and runs runc) and stop it by its pid on exit.

    Its root (the build cache: layers and snapshots kept between builds) and socket live under `state`.

    Raises:
        BuildError: buildkitd exited or did not answer within `START_TIMEOUT`; the message ends with its log.
    """
    root, socket, log_path = state / "root", state / "buildkitd.sock", state / "buildkitd.log"
    root.mkdir(parents=True, exist_ok=True)
    socket.unlink(missing_ok=True)
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            _niced(daemon_command(tools.buildkitd, runc, root, socket)),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (state / "buildkitd.pid").write_text(f"{process.pid}\n")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _ready(tools.buildctl, socket):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise BuildError(f"buildkitd did not start (see {log_path}):\n{tail}")
            time.sleep(0.5)
        log(f"buildkitd: running (pid {process.pid}, {socket})")
        yield Daemon(socket, tools.buildctl, process.pid)
    finally:
        _stop(process)
        (state / "buildkitd.pid").unlink(missing_ok=True)


def _stop(process: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds: only this process, by its pid."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def build_command(
    daemon: Daemon,
    context: Path,
    dockerfile: Path,
    output: Path,
    name: str,
    build_args: dict[str, str],
    layouts: dict[str, tuple[Path, str]],
    secrets: dict[str, Path] | None = None,
) -> list[str]:
    """`buildctl build` of `dockerfile` into an OCI tarball named `name`.

    Args:
        layouts: FROM names served by local OCI layouts: image name -> (layout folder, manifest digest).
        secrets: build secrets by id (mounted under /run/secrets/ by the steps that ask, never stored).
    """
    command = daemon.buildctl_command(
        "build",
        "--progress=plain",
        "--frontend=dockerfile.v0",
        f"--local=context={context}",
        f"--local=dockerfile={dockerfile.parent}",
        f"--opt=filename={dockerfile.name}",
        f"--output=type=oci,dest={output},name={name}",
    )
    for key, value in sorted(build_args.items()):
        command.append(f"--opt=build-arg:{key}={value}")
    for key, path in sorted((secrets or {}).items()):
        command.append(f"--secret=id={key},src={path}")
    for index, (image, (layout, digest)) in enumerate(sorted(layouts.items())):
        store = f"layout{index}"
        command += [f"--oci-layout={store}={layout}", f"--opt=context:{image}=oci-layout://{store}@{digest}"]
    return command


def host_ca_bundle() -> Path | None:
    """The CA bundle this host trusts (SSL_CERT_FILE, else Debian's), passed to builds as secret `ca-bundle`:
    where egress re-signs TLS, the downloads inside a build trust what the host trusts."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def run_build(command: Sequence[str], log_path: Path, what: str) -> None:
    """Run a `buildctl build`, its progress appended to `log_path`.

    Raises:
        BuildError: the build failed; the message names `what` and the failing Dockerfile step.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as out:
        done = subprocess.run(list(command), stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        with log_path.open("rb") as text:
            text.seek(start)
            output = text.read().decode(errors="replace")
        step = failing_step(output)
        raise BuildError(f"building {what} failed at {step}; see {log_path}:\n{output[-2500:]}")


def failing_step(progress: str) -> str:
    """The Dockerfile step a failed `buildctl --progress=plain` run names (`[build 5/9] RUN uv sync ...`)."""
    for line in reversed(progress.splitlines()):
        if "ERROR: failed to solve:" in line or line.startswith("error:"):
            detail = line.split("failed to solve:", 1)[-1].strip()
            return detail[:300]
    for line in reversed(progress.splitlines()):
        if line.startswith("#") and "ERROR" in line:
            return line[:300]
    return "an unnamed step"
