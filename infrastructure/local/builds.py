"""Build once into the download cache: a Go program from the Go module proxy, Java jars from Maven Central."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from infrastructure.local.procs import log_tail
from infrastructure.local.service import ServiceError

Log = Callable[[str], None]

#: Free space a cold MinIO build needs: ~265 MB of modules, ~2 GB of build cache, the 107 MiB binary.
GO_BUILD_FREE_BYTES = 3 << 30
GO_HINT = "install Go 1.24 or newer (https://go.dev/dl/) and put `go` on PATH, or set STACK_GO to its path"


@contextlib.contextmanager
def cache_lock(cache: Path, name: str) -> Iterator[None]:
    """Hold `<cache>/.<name>.lock`: a second `up` (another worktree sharing the cache) waits for the build."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f".{name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_logged(
    command: Sequence[str], log_path: Path, env: dict[str, str], what: str, cwd: Path | None = None
) -> None:
    """Run a build command, its output appended to `log_path`.

    Raises:
        ServiceError: it failed; the message names `what` and ends with the log's last lines.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        out.write(f"=== {' '.join(command)}\n".encode())
        out.flush()
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, check=False)
    if done.returncode != 0:
        tail = log_tail(log_path, 20)
        hint = " (the disk is full: free some space)" if "no space left on device" in tail.lower() else ""
        raise ServiceError(
            f"{what} failed with exit code {done.returncode}{hint}; last lines of {log_path}:\n{tail}"
        )


#: The CPU priority builds run at (`nice`'s increment, 0-19), from LAKEHOUSE_BUILD_NICE: lower than the
#: services' and other work's by default, as the machine is shared; `make test` gives the node tier's
#: builds 0, as on an empty cache they are the suite's longest path.
BUILD_NICE_ENV, BUILD_NICE_DEFAULT = "LAKEHOUSE_BUILD_NICE", 10


def build_nice() -> int:
    """The increment of `BUILD_NICE_ENV`, else `BUILD_NICE_DEFAULT`.

    Raises:
        ServiceError: it is set to something other than a whole number from 0 to 19.
    """
    text = os.environ.get(BUILD_NICE_ENV, "").strip()
    if not text:
        return BUILD_NICE_DEFAULT
    if not text.isdigit() or int(text) > 19:
        raise ServiceError(f"{BUILD_NICE_ENV}={text!r}: expected a whole number from 0 to 19")
    return int(text)


def _niced(command: list[str]) -> list[str]:
    """`command` at the builds' CPU priority (`build_nice`)."""
    increment = build_nice()
    nice = shutil.which("nice")
    return [nice, "-n", str(increment), *command] if nice and increment else command


def find_go(configured: str | None) -> str:
    """The `go` binary: STACK_GO, else PATH, else /usr/local/go/bin/go.

    Raises:
        ServiceError: no Go toolchain; the message says what to install.
    """
    candidates = [configured] if configured else [shutil.which("go"), "/usr/local/go/bin/go"]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise ServiceError(f"no Go toolchain found ({configured or 'go not on PATH'}): {GO_HINT}")


def _go_env(go: str, name: str) -> Path:
    done = subprocess.run([go, "env", name], capture_output=True, text=True, check=False)
    return Path(done.stdout.strip() or tempfile.gettempdir())


def _check_free_space(folders: list[Path], needed: int, what: str) -> None:
    for folder in folders:
        probe = folder
        while not probe.exists():
            probe = probe.parent
        free = shutil.disk_usage(probe).free
        if free < needed:
            raise ServiceError(
                f"not enough disk space to build {what}: {free >> 20} MiB free in {probe}, about "
                f"{needed >> 20} MiB needed (module and build caches); free some space and run `up` again"
            )


def go_install(
    module: str,
    version: str,
    cache: Path,
    log_path: Path,
    log: Log,
    go: str | None = None,
    *,
    tags: Sequence[str] = (),
    cgo: bool = False,
    main: str = "",
) -> Path:
    """`go install module@version` once; the binary is kept as `<cache>/<name>-<version>/<name>`.

    Module and build caches stay Go's own (`go env GOMODCACHE GOCACHE`), so a rebuild is quick.

    Args:
        tags: Go build tags (runc's `seccomp`, containerd's `no_btrfs`).
        cgo: build with cgo (runc links libseccomp); otherwise a static pure-Go binary.
        main: `NAME=PACKAGE` for a module with no command of its own (etcd's server): a command `NAME`
            calling `PACKAGE.Main(os.Args)`, built in a module of ours that requires `module@version`.

    Raises:
        ServiceError: no Go toolchain, not enough disk space, or the build failed (with its log tail).
    """
    name, _, package = main.partition("=") if main else (module.rstrip("/").rsplit("/", 1)[1], "", "")
    target = cache / f"{name}-{version}" / name
    if target.is_file():
        return target
    binary = find_go(go)
    with cache_lock(cache, f"{name}-{version}"):
        if target.is_file():
            return target
        _check_free_space(
            [cache, _go_env(binary, "GOMODCACHE"), _go_env(binary, "GOCACHE")], GO_BUILD_FREE_BYTES, name
        )
        gobin = Path(tempfile.mkdtemp(prefix=f".{name}-build.", dir=cache))
        try:
            log(f"{name}: building {module}@{version} with `go install` (once: about 4 min on two cores)")
            env = {**os.environ, "GOBIN": str(gobin), "GOFLAGS": "-buildvcs=false"}
            env["CGO_ENABLED"] = "1" if cgo else "0"
            flags = ["-trimpath", "-ldflags=-s -w", *(["-tags", ",".join(tags)] if tags else [])]
            what = f"building {name} ({module}@{version})"
            if package:
                _main_module(gobin, module, version, package)
                run_logged(_niced([binary, "mod", "tidy"]), log_path, env, what, cwd=gobin)
                command = _niced([binary, "build", *flags, "-o", str(gobin / name), "."])
            else:
                command = _niced([binary, "install", *flags, f"{module}@{version}"])
            run_logged(command, log_path, env, what, cwd=gobin)
            target.parent.mkdir(parents=True, exist_ok=True)
            (gobin / name).replace(target)
        finally:
            shutil.rmtree(gobin, ignore_errors=True)
    log(f"{name}: built {target} ({target.stat().st_size >> 20} MiB)")
    return target


def _main_module(folder: Path, module: str, version: str, package: str) -> None:
    """go.mod and main.go of a command that hands its arguments to `package.Main`."""
    (folder / "go.mod").write_text(
        f"module lakehouse.local/command\n\ngo 1.24\n\nrequire {module} {version}\n"
    )
    (folder / "main.go").write_text(
        f'package main\n\nimport (\n\t"os"\n\n\tcommand "{package}"\n)\n\n'
        "func main() { command.Main(os.Args) }\n"
    )


def tree_digest(paths: Sequence[Path]) -> str:
    """Short sha256 over files' names and contents: the cache key of what is built from them."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def maven_settings(cache: Path, maven_url: str) -> Path:
    """A Maven settings file sending every download to `maven_url` (STACK_MAVEN_URL)."""
    path = cache / "maven-settings.xml"
    text = (
        "<settings><mirrors><mirror><id>stack</id><mirrorOf>*</mirrorOf>"
        f"<url>{maven_url}</url></mirror></mirrors></settings>\n"
    )
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def maven_jars(pom: Path, target: Path, cache: Path, maven_url: str, log_path: Path, log: Log) -> Path:
    """Resolve the runtime dependencies of `pom` into `target` (once) with `mvn dependency:copy-dependencies`.

    Maven's own downloads go to `<cache>/m2`.

    Raises:
        ServiceError: Maven is missing or the resolution failed (with the log tail).
    """
    if (target / ".complete").exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError("mvn not found: install Maven (`apt-get install -y maven`)")
    with cache_lock(cache, target.name):
        if (target / ".complete").exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            log(f"resolving the jars of {pom.parent.name} from {maven_url} (once)")
            command = [mvn, "-B", "-q", "-f", str(pom), "-s", str(maven_settings(cache, maven_url))]
            command += [f"-Dmaven.repo.local={cache / 'm2'}", "dependency:copy-dependencies"]
            command += [f"-DoutputDirectory={staging}", "-DincludeScope=runtime"]
            run_logged(command, log_path, dict(os.environ), f"mvn dependency:copy-dependencies of {pom}")
            (staging / ".complete").write_text(pom.read_text())
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target
