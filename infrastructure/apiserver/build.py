"""Build the Kubernetes binaries (Go module proxy) and fetch KServe's and Argo's CRDs once into `.cache/`."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from components.core.settings import REPO_ROOT
from infrastructure.local.builds import _niced, cache_lock, find_go
from infrastructure.local.service import ServiceError

CACHE = Path(os.environ.get("LAKEHOUSE_APISERVER_CACHE", REPO_ROOT / ".cache" / "kube-apiserver"))

KUBERNETES_VERSION = "1.35.4"
#: The commands built from k8s.io/kubernetes, all in one `go build` (one module, one link step each): the
#: API server the cluster tests use alone, and everything a single node runs.
KUBERNETES_COMMANDS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "kubectl",
)
#: The Go language version and GODEBUG defaults k8s.io/kubernetes v1.35 builds with.
GO_DIRECTIVE = "1.25.0"
#: KServe whose `InferenceService` CRD the tests install (the newest release the module proxy serves here).
KSERVE_MODULE, KSERVE_VERSION = "github.com/kserve/kserve", "v0.20.0"
KSERVE_CRD = "config/crd/full/serving.kserve.io_inferenceservices.yaml"
#: Argo Workflows, whose `Workflow` objects Kubeflow Pipelines creates for each run (minimal CRDs: the
#: full ones have a non-structural schema the API server refuses; Argo itself installs the minimal ones).
ARGO_MODULE, ARGO_VERSION = "github.com/argoproj/argo-workflows/v3", "v3.6.12"
ARGO_CRD = "manifests/base/crds/minimal/argoproj.io_workflows.yaml"

#: The one revision of Kubeflow Pipelines the module proxy serves here (KFP 2.0.5).
KFP_MODULE, KFP_VERSION = "github.com/kubeflow/pipelines", "v0.0.0-20231208180049-c5658f09ec38"
#: KFP's recurring runs (`ScheduledWorkflow`), which its API server creates.
KFP_CRD = "manifests/kustomize/base/pipeline/cluster-scoped/scheduled-workflow-crd.yaml"

Log = Callable[[str], None]


class BuildError(RuntimeError):
    """The binary or a CRD cannot be produced here; the message names what is missing."""


@dataclass(frozen=True)
class GoCommand:
    """One command of a Go module: its package (a path inside the module), the binary's name (the package's
    last element when empty), and how it is compiled."""

    package: str
    name: str = ""
    cgo: bool = False
    tags: tuple[str, ...] = ()

    @property
    def binary(self) -> str:
        return self.name or self.package.rstrip("/").rsplit("/", 1)[-1]


def binary_path(version: str = KUBERNETES_VERSION, command: str = "kube-apiserver") -> Path:
    return CACHE / f"v{version}" / command


def _go() -> str:
    try:
        return find_go(os.environ.get("STACK_GO"))
    except ServiceError as exc:
        raise BuildError(str(exc)) from None


def _run(command: list[str], cwd: Path, log: Log, env: dict[str, str] | None = None) -> str:
    log(f"  $ {' '.join(command)}")
    done = subprocess.run(
        command, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BuildError(f"`{' '.join(command)}` failed in {cwd}:\n{(done.stdout + done.stderr)[-3000:]}")
    return done.stdout


def _build_once(targets: Sequence[Path], lock: str, build: Callable[[Path, str], None]) -> None:
    """Run `build(module folder, go binary)` under a lock when one of `targets` is missing (the module folder
    beside the first)."""
    if all(target.exists() for target in targets):
        return
    with cache_lock(CACHE, lock):
        if not all(target.exists() for target in targets):
            workdir = targets[0].parent / "module"
            workdir.mkdir(parents=True, exist_ok=True)
            build(workdir, _go())


def download_module(module: str, version: str, workdir: Path, log: Log) -> dict:
    """`go mod download -json module@version`: the module's folder (`Dir`) and `.mod` file (`GoMod`)."""
    out = _run([_go(), "mod", "download", "-json", f"{module}@{version}"], workdir, log)
    info = json.loads(out)
    if info.get("Error"):
        raise BuildError(f"cannot download {module}@{version} from the Go module proxy: {info['Error']}")
    return info


def staging_replaces(kubernetes_gomod: str, version: str) -> list[tuple[str, str]]:
    """The `k8s.io/NAME => ./staging/...` replaces of k8s.io/kubernetes, as `(NAME, v0.MINOR.PATCH)` pins.

    Args:
        kubernetes_gomod: text of k8s.io/kubernetes' own go.mod.
        version: the Kubernetes version, e.g. "1.35.4"; staging modules are tagged v0.35.4.
    """
    staging_version = "v0." + version.split(".", 1)[1]
    names = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", kubernetes_gomod, flags=re.M)
    if not names:
        raise BuildError("k8s.io/kubernetes' go.mod lists no ./staging replaces: unexpected layout")
    return [(name, staging_version) for name in sorted(set(names))]


def module_files(kubernetes_gomod: str, version: str) -> dict[str, str]:
    """go.mod and tools.go of a module that builds every command of `KUBERNETES_COMMANDS` at `version`."""
    replaces = "\n".join(
        f"\t{name} => {name} {pin}" for name, pin in staging_replaces(kubernetes_gomod, version)
    )
    gomod = (
        "module lakehouse.local/kube-apiserver\n\n"
        f"go {GO_DIRECTIVE}\n\ngodebug default=go1.25\n\n"
        f"require k8s.io/kubernetes v{version}\n\nreplace (\n{replaces}\n)\n"
    )
    imports = "".join(f'\t_ "k8s.io/kubernetes/cmd/{command}"\n' for command in KUBERNETES_COMMANDS)
    tools = f"//go:build tools\n\npackage tools\n\nimport (\n{imports})\n"
    return {"go.mod": gomod, "tools.go": tools}


def version_ldflags(version: str) -> str:
    """Linker flags that stamp `version` into the binaries (else they report v0.0.0-master and kubectl
    warns about a version skew)."""
    major, minor = version.split(".")[:2]
    return " ".join(
        [
            "-s -w",
            f"-X k8s.io/component-base/version.gitVersion=v{version}",
            f"-X k8s.io/component-base/version.gitMajor={major}",
            f"-X k8s.io/component-base/version.gitMinor={minor}",
            f"-X k8s.io/client-go/pkg/version.gitVersion=v{version}",
        ]
    )


def module_directives(gomod: str) -> list[str]:
    """The `replace` and `exclude` lines of a module's go.mod, one directive a line, for a wrapper module.

    A dependency's `replace` and `exclude` directives do not apply: only the main module's count, so a
    wrapper that requires a module must repeat them to build what its authors build. A replacement by a
    relative path (`=> ./staging/x`) is left out: the module's zip never holds such a folder (a folder with
    its own go.mod is a module of its own and is cut from the zip), so the required version applies instead.
    """
    directives = []
    block = ""
    for raw in gomod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if block:
            if line == ")":
                block = ""
            elif line:
                directives.append(f"{block} {line}")
            continue
        keyword, _, rest = line.partition(" ")
        if keyword in ("replace", "exclude"):
            rest = rest.strip()
            if rest == "(":
                block = keyword
            elif rest:
                directives.append(f"{keyword} {rest}")
    return [line for line in directives if not re.search(r"=>\s*\.{1,2}/", line)]


def module_go_version(gomod: str, floor: str = "1.21") -> str:
    """The `go` line of a module's go.mod, raised to `floor` (a wrapper's `go` line sets the GODEBUG
    defaults its binaries run with; the module's own keeps them as its authors tested)."""
    found = re.search(r"^go\s+(\S+)", gomod, flags=re.M)
    version = found.group(1) if found else floor
    numbers = [tuple(int(part) for part in text.split(".")) for text in (version, floor)]
    return version if numbers[0] >= numbers[1] else floor


def wrapper_files(module: str, version: str, commands: Sequence[GoCommand], gomod: str) -> dict[str, str]:
    """go.mod and tools.go of a module of our own that requires `module` at `version` and imports the
    packages of `commands` (`go install module@version` refuses a module with `replace` or `exclude` lines,
    and builds one command at a time); `gomod` is the text of the module's own go.mod."""
    directives = "".join(f"{line}\n" for line in module_directives(gomod))
    text = f"module lakehouse.local/build\n\ngo {module_go_version(gomod)}\n\nrequire {module} {version}\n"
    imports = "".join(f'\t_ "{module}/{command.package}"\n' for command in commands)
    return {
        "go.mod": text + (f"\n{directives}" if directives else ""),
        "tools.go": f"//go:build tools\n\npackage tools\n\nimport (\n{imports})\n",
    }


def build_go_commands(
    module: str,
    version: str,
    commands: Sequence[GoCommand],
    target_dir: Path,
    *,
    ldflags: str = "-s -w",
    extra_directives: Callable[[Path, dict], Sequence[str]] | None = None,
    log: Log = print,
) -> dict[str, Path]:
    """Return the binaries of `commands` of `module@version` in `target_dir`, building them (all, in a
    wrapper module under `target_dir/module`) when one is missing; a present binary is never rebuilt.

    One niced `go build` a command (Go's build cache shares the packages they have in common).

    Args:
        extra_directives: called with the wrapper's folder and `go mod download -json`'s answer for the
            module, returns more go.mod lines (a `replace` of the module by a patched copy).

    Raises:
        BuildError: no Go toolchain, the module cannot be downloaded, or a build failed.
    """
    targets = {command.binary: target_dir / command.binary for command in commands}

    def build(workdir: Path, go: str) -> None:
        started = time.monotonic()
        names = ", ".join(targets)
        log(f"building {names} of {module}@{version} from the Go module proxy")
        info = download_module(module, version, workdir, log)
        files = wrapper_files(module, version, commands, Path(info["GoMod"]).read_text())
        extra = list(extra_directives(workdir, info)) if extra_directives else []
        files["go.mod"] += "".join(f"{line}\n" for line in extra)
        for name, text in files.items():
            (workdir / name).write_text(text)
        env = {"GOFLAGS": "-buildvcs=false"}
        _run(_niced([go, "mod", "tidy"]), workdir, log, env)
        staging = target_dir / ".part"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for command in commands:
            tags = ["-tags", ",".join(command.tags)] if command.tags else []
            output = staging / command.binary
            line = [go, "build", "-trimpath", f"-ldflags={ldflags}", *tags, "-o", str(output)]
            cgo = {"CGO_ENABLED": "1" if command.cgo else "0"}
            _run(_niced([*line, f"{module}/{command.package}"]), workdir, log, {**env, **cgo})
        for name, target in targets.items():
            (staging / name).replace(target)
        shutil.rmtree(staging)
        log(f"built {names} in {time.monotonic() - started:.0f} s")

    _build_once(list(targets.values()), f"build-{target_dir.name}", build)
    return targets


def build_kubernetes(
    version: str = KUBERNETES_VERSION, commands: tuple[str, ...] = KUBERNETES_COMMANDS, log: Log = print
) -> dict[str, Path]:
    """Return the cached binaries of `commands`, building all of `KUBERNETES_COMMANDS` when one is missing.

    One `go build` links all six from one module: the cold build takes about 10 minutes on two cores (Go's
    build cache then makes a relink take about a minute); the binaries are kept in
    `.cache/kube-apiserver/v<version>/`, and a present binary is never rebuilt.
    """
    targets = {command: binary_path(version, command) for command in commands}

    def build(workdir: Path, go: str) -> None:
        started = time.monotonic()
        log(f"building Kubernetes v{version} ({', '.join(KUBERNETES_COMMANDS)}) from the Go module proxy")
        log("  (once; cold: ~10 min on 2 cores)")
        info = download_module("k8s.io/kubernetes", f"v{version}", workdir, log)
        for name, text in module_files(Path(info["GoMod"]).read_text(), version).items():
            (workdir / name).write_text(text)
        _run([go, "mod", "tidy"], workdir, log)
        staging = workdir.parent / ".part"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        packages = [f"k8s.io/kubernetes/cmd/{command}" for command in KUBERNETES_COMMANDS]
        flags = version_ldflags(version)
        _run([go, "build", "-ldflags", flags, "-o", f"{staging}/", *packages], workdir, log)
        for command in KUBERNETES_COMMANDS:
            (staging / command).replace(binary_path(version, command))
        staging.rmdir()
        log(f"built {', '.join(KUBERNETES_COMMANDS)} in {time.monotonic() - started:.0f} s")

    _build_once(list(targets.values()), "build", build)
    return targets


def build_apiserver(version: str = KUBERNETES_VERSION, log: Log = print) -> Path:
    """Return the cached kube-apiserver binary, building the Kubernetes binaries when it is missing."""
    return build_kubernetes(version, ("kube-apiserver",), log)["kube-apiserver"]


def fetch_crd(module: str, version: str, path: str, log: Log = print) -> Path:
    """Return a CRD file of a Go module, copied once from the module cache into `.cache/`."""
    target = CACHE / "crds" / f"{module.replace('/', '_')}@{version}" / Path(path).name
    if target.exists():
        return target
    with cache_lock(CACHE, "crds"):
        if not target.exists():
            scratch = Path(tempfile.mkdtemp(prefix="crd-", dir=CACHE))
            try:
                (scratch / "go.mod").write_text("module lakehouse.local/crds\n\ngo 1.25\n")
                source = Path(download_module(module, version, scratch, log)["Dir"]) / path
                if not source.exists():
                    raise BuildError(f"{module}@{version} has no {path}")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    return target


def custom_resource_definitions(log: Log = print) -> list[Path]:
    """The CRDs the manifests' custom resources and KFP's API server need: KServe `InferenceService`, Argo
    `Workflow`, KFP `ScheduledWorkflow`."""
    return [
        fetch_crd(KSERVE_MODULE, KSERVE_VERSION, KSERVE_CRD, log),
        fetch_crd(ARGO_MODULE, ARGO_VERSION, ARGO_CRD, log),
        fetch_crd(KFP_MODULE, KFP_VERSION, KFP_CRD, log),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infrastructure.apiserver.build", description=__doc__)
    parser.add_argument("--version", default=KUBERNETES_VERSION, help="Kubernetes version to build")
    args = parser.parse_args(argv)
    try:
        for binary in build_kubernetes(args.version).values():
            print(binary)
        for crd in custom_resource_definitions():
            print(crd)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
