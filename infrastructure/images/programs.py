"""The programs Kubeflow Pipelines and KServe run on a node, built from the Go module proxy, and their images.

Each module's commands are built once (`build_go_commands`: a wrapper module that repeats the module's own
`replace` and `exclude` lines) into `.cache/programs/<module>@<version>/`, never rebuilt when present. KFP's
UI, built with Node from the npm registry, is in `frontend.py`; its image is listed here with the others.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from infrastructure.apiserver.build import (
    ARGO_MODULE,
    ARGO_VERSION,
    KFP_MODULE,
    KFP_VERSION,
    KSERVE_MODULE,
    KSERVE_VERSION,
    BuildError,
    GoCommand,
    build_go_commands,
    download_module,
)
from infrastructure.images.recipes import REPO_ROOT, SERVICES, ImageRecipe, stage_context

Log = Callable[[str], None]

PROGRAMS = REPO_ROOT / ".cache" / "programs"

#: KFP 2.0.5's backend: the API server, the agent that copies workflow status back to it, the controller
#: that starts a recurring run's workflows on its schedule, and the v2 driver and launcher every pipeline
#: step runs (static, as upstream builds them).
KFP_COMMANDS = (
    # the API server links SQLite (gorm's sqlite dialect, mattn/go-sqlite3) through cgo; Go's own resolver
    # and user lookup keep it off glibc's NSS
    GoCommand("backend/src/apiserver", "apiserver", cgo=True, tags=("netgo", "osusergo")),
    GoCommand("backend/src/agent/persistence", "persistence_agent"),
    GoCommand("backend/src/crd/controller/scheduledworkflow", "scheduledworkflow_controller"),
    GoCommand("backend/src/v2/cmd/driver", "driver"),
    GoCommand("backend/src/v2/cmd/launcher-v2", "launcher-v2"),
)
ARGO_COMMANDS = (GoCommand("cmd/workflow-controller"), GoCommand("cmd/argoexec"))
KSERVE_COMMANDS = (GoCommand("cmd/manager"),)
#: The file of Argo's repository its module zip lacks, and the file it links to (see `_patched_argo`).
ARGO_MISSING = ("workflow/executor/os-specific/signal_linux.go", "signal_darwin.go")


#: Our changes to KFP 2.0.5, each (file, the text it must hold once, what replaces it):
KFP_PATCHES = (
    # its compiled workflows predate Pod Security `restricted`: the launcher's init container (it copies the
    # launcher into each step's pod) asks for nothing and the pod is refused; KFP 2.16+ sets the same
    (
        "backend/src/v2/compiler/argocompiler/container.go",
        "Resources: launcherResources,",
        "Resources: launcherResources,\n\t\t\t\tSecurityContext: restrictedContainer(),",
    ),
    # the driver refuses a step's Kubernetes settings written by a newer kfp-kubernetes (fields it does not
    # know, such as a Secret's `optional`); it now keeps what it knows (Secrets as variables) and skips the
    # rest (pod labels, the security context: Argo's configuration sets the latter on the node)
    (
        "backend/src/v2/cmd/driver/main.go",
        "jsonpb.UnmarshalString(*k8sExecConfigJson, k8sExecCfg)",
        "(&jsonpb.Unmarshaler{AllowUnknownFields: true}).Unmarshal("
        "bytes.NewReader([]byte(*k8sExecConfigJson)), k8sExecCfg)",
    ),
    # artifacts on `minio://` were signed for region "minio", which a MinIO with a region set refuses; the
    # platform's object store answers as us-east-1 (MinIO's default, `s3_region` of the settings)
    (
        "backend/src/v2/objectstore/object_store.go",
        'Region:           aws.String("minio"),',
        'Region:           aws.String("us-east-1"),',
    ),
    # the driver records a step under its display name (`set_display_name`) but finds an upstream step by its
    # key, so a step after one with a display name never found it; the compiler now hands the driver each
    # step named by its key (what KFP 2.1+ records), the display names stay in the pipeline spec
    (
        "backend/src/v2/compiler/argocompiler/dag.go",
        "taskSpecJson, err := stablyMarshalJSON(task)",
        "taskSpecJson, err := stablyMarshalJSON(taskNamedByKey(name, task))",
    ),
    # a step whose execution could not be read from ML Metadata crashed publishing nothing (a nil pointer),
    # and the crash hid the reason; it now fails with that reason
    (
        "backend/src/v2/component/launcher_v2.go",
        'err = fmt.Errorf("failed to publish results to ML Metadata: %w", err)\n\t\t}\n\t}()',
        'err = fmt.Errorf("failed to publish results to ML Metadata: %w", err)\n\t\t}\n\t}()\n'
        '\tif execution == nil {\n\t\treturn fmt.Errorf("no execution: it was never read from ML Metadata")'
        "\n\t}",
    ),
)
KFP_COMPILER = "backend/src/v2/compiler/argocompiler"
KFP_HELPERS_GO = """package argocompiler

import (
\tpipelinespec "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
\t"google.golang.org/protobuf/proto"
\tk8score "k8s.io/api/core/v1"
)

// restrictedContainer is what Pod Security `restricted` asks of a container beyond its pod's settings:
// no privilege escalation and no capabilities.
func restrictedContainer() *k8score.SecurityContext {
\tescalate := false
\treturn &k8score.SecurityContext{
\t\tAllowPrivilegeEscalation: &escalate,
\t\tCapabilities:             &k8score.Capabilities{Drop: []k8score.Capability{"ALL"}},
\t}
}

// taskNamedByKey is a copy of the task whose name is its key in the DAG, as the driver looks tasks up.
func taskNamedByKey(key string, task *pipelinespec.PipelineTaskSpec) *pipelinespec.PipelineTaskSpec {
\tnamed := proto.Clone(task).(*pipelinespec.PipelineTaskSpec)
\tif named.TaskInfo == nil {
\t\tnamed.TaskInfo = &pipelinespec.PipelineTaskInfo{}
\t}
\tnamed.TaskInfo.Name = key
\treturn named
}
"""


def program_folder(module: str, version: str) -> Path:
    """Where the commands of `module@version` are kept."""
    return PROGRAMS / f"{module.replace('/', '_')}@{version}"


def build_kfp_backend(log: Log = print) -> dict[str, Path]:
    """apiserver, persistence_agent, scheduledworkflow_controller, driver and launcher-v2 of KFP 2.0.5 (cold:
    about 8 min on two cores), with `KFP_PATCHES`: the node's image and the cluster tests' API server on
    loopback share one build."""
    changes = hashlib.sha256(repr((KFP_PATCHES, KFP_HELPERS_GO)).encode()).hexdigest()[:12]
    folder = program_folder(KFP_MODULE, f"{KFP_VERSION}-patched-{changes}")
    return build_go_commands(
        KFP_MODULE, KFP_VERSION, KFP_COMMANDS, folder, extra_directives=_patched_kfp, log=log
    )


def _patched_kfp(workdir: Path, info: dict) -> list[str]:
    """A copy of KFP's module with `KFP_PATCHES` applied (and the helpers they call)."""
    copy = _module_copy(workdir, info)
    for name, anchor, replacement in KFP_PATCHES:
        source = copy / name
        text = source.read_text()
        if text.count(anchor) != 1:
            raise BuildError(f"{KFP_MODULE}@{KFP_VERSION}: {name} no longer holds one {anchor!r}")
        source.write_text(text.replace(anchor, replacement))
    (copy / KFP_COMPILER / "lakehouse_helpers.go").write_text(KFP_HELPERS_GO)
    return [f"replace {KFP_MODULE} => {copy}"]


def _module_copy(workdir: Path, info: dict) -> Path:
    """A writable copy of a downloaded module (`go mod download -json`'s answer) beside the wrapper module."""
    copy = workdir.parent / "patched-module"
    if copy.exists():
        _writable(copy)
        shutil.rmtree(copy)
    shutil.copytree(info["Dir"], copy)
    _writable(copy)
    return copy


def _patched_argo(workdir: Path, info: dict) -> list[str]:
    """A writable copy of Argo's module with the file its zip lacks, and the `replace` that builds from it.

    Without it `argoexec` does not compile: `workflow/executor/os-specific/command_unix.go: undefined:
    Setpgid`. On Linux that package's `Kill`, `Setpgid`, `Wait`, `CanIgnoreSignal` and `Term` come from
    `signal_linux.go`, in the repository a symbolic link to `signal_darwin.go`, and module zips hold no
    symbolic links; the copy restores it as that file's content. Everything else is the checksummed module.
    """
    copy = _module_copy(workdir, info)
    missing, original = ARGO_MISSING
    target = copy / missing
    if target.exists():
        raise BuildError(f"{ARGO_MODULE}@{ARGO_VERSION} now holds {missing}: drop the patch")
    shutil.copyfile(target.with_name(original), target)
    return [f"replace {ARGO_MODULE} => {copy}"]


def _writable(folder: Path) -> None:
    """Make a copy of the module cache's read-only files and folders writable (and removable)."""
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files, "."]:
            path = Path(root, name)
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def build_argo(log: Log = print) -> dict[str, Path]:
    """workflow-controller and argoexec of Argo Workflows v3.6.12 (cold: about 12 min on two cores)."""
    ldflags = f"-s -w -X {ARGO_MODULE}.version={ARGO_VERSION}"
    folder = program_folder(ARGO_MODULE, ARGO_VERSION)
    return build_go_commands(
        ARGO_MODULE,
        ARGO_VERSION,
        ARGO_COMMANDS,
        folder,
        ldflags=ldflags,
        extra_directives=_patched_argo,
        log=log,
    )


def build_kserve_manager(log: Log = print) -> Path:
    """KServe v0.20.0's controller manager (cold: about 12 min on two busy cores)."""
    folder = program_folder(KSERVE_MODULE, KSERVE_VERSION)
    return build_go_commands(KSERVE_MODULE, KSERVE_VERSION, KSERVE_COMMANDS, folder, log=log)["manager"]


def _kfp_backend(cache: Path, log: Log) -> Path:
    """KFP's five binaries, upstream's API server config from the module, and an empty list of samples."""
    binaries = build_kfp_backend(log)
    module = Path(download_module(KFP_MODULE, KFP_VERSION, PROGRAMS, log)["Dir"])
    entries = {
        **binaries,
        "config.json": module / "backend" / "src" / "apiserver" / "config" / "config.json",
        "sample_config.json": SERVICES / "kfp-backend" / "sample_config.json",
    }
    return stage_context(cache, "kfp-backend", entries)


def program_recipes() -> list[ImageRecipe]:
    """The images of the programs above and KFP's UI, each a Dockerfile under `services/` over its staged
    binaries."""
    from infrastructure.images.frontend import kfp_ui_recipe  # it builds with this module's helpers

    return [
        ImageRecipe(
            "argo",
            f"localhost/argo:{ARGO_VERSION}",
            SERVICES / "argo" / "Dockerfile",
            lambda cache, log: stage_context(cache, "argo", build_argo(log)),
            "Argo Workflows: workflow-controller (entry point) and argoexec on the PATH, user 10001",
            "quay.io/argoproj/workflow-controller and quay.io/argoproj/argoexec",
        ),
        ImageRecipe(
            "kfp-backend",
            "localhost/kfp-backend:2.0.5",
            SERVICES / "kfp-backend" / "Dockerfile",
            _kfp_backend,
            "KFP 2.0.5: apiserver (default command), persistence_agent, scheduledworkflow_controller, "
            "driver, launcher-v2; user 10001",
            "ghcr.io/kubeflow/kfp-api-server, kfp-persistence-agent, kfp-scheduledworkflow-controller, "
            "kfp-driver and kfp-launcher",
        ),
        ImageRecipe(
            "kserve-controller",
            f"localhost/kserve-controller:{KSERVE_VERSION}",
            SERVICES / "kserve-controller" / "Dockerfile",
            lambda cache, log: stage_context(
                cache, "kserve-controller", {"manager": build_kserve_manager(log)}
            ),
            "KServe's controller manager, /manager the entry point; user 10001",
            "docker.io/kserve/kserve-controller",
        ),
        kfp_ui_recipe(),
    ]
