"""The custom resource definitions the platform's `node` overlay needs on the cluster, installed by `up`:
Argo Workflows' (the minimal ones, as Argo installs them), Kubeflow Pipelines' `ScheduledWorkflow` (its
persistence agent watches them), and KServe's `InferenceService` family. Each file is read from its Go module
(the proxy serves them) once into `.cache/`, and applied server-side."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from infrastructure.apiserver.build import (
    ARGO_MODULE,
    ARGO_VERSION,
    KFP_CRD,
    KFP_MODULE,
    KFP_VERSION,
    KSERVE_MODULE,
    KSERVE_VERSION,
    fetch_crd,
)
from infrastructure.node.config import NodeConfig

Log = Callable[[str], None]
ARGO_KINDS = (
    "clusterworkflowtemplates",
    "cronworkflows",
    "workflowartifactgctasks",
    "workfloweventbindings",
    "workflows",
    "workflowtaskresults",
    "workflowtasksets",
    "workflowtemplates",
)
KSERVE_KINDS = (
    "clusterservingruntimes",
    "inferencegraphs",
    "inferenceservices",
    "servingruntimes",
    "trainedmodels",
)
#: (module, version, path in the module) of every definition.
DEFINITIONS = (
    *(
        (ARGO_MODULE, ARGO_VERSION, f"manifests/base/crds/minimal/argoproj.io_{kind}.yaml")
        for kind in ARGO_KINDS
    ),
    (KFP_MODULE, KFP_VERSION, KFP_CRD),
    *(
        (KSERVE_MODULE, KSERVE_VERSION, f"config/crd/full/serving.kserve.io_{kind}.yaml")
        for kind in KSERVE_KINDS
    ),
)


def files(log: Log) -> list[Path]:
    return [fetch_crd(module, version, path, log) for module, version, path in DEFINITIONS]


def apply(config: NodeConfig, kubectl: Callable[..., object], log: Log) -> set[str]:
    """Apply every definition (server-side: some are larger than a client-side apply's annotation allows);
    returns their names, for the caller to wait on with :func:`established`."""
    paths = files(log)
    arguments = [item for path in paths for item in ("-f", str(path))]
    kubectl(config, "apply", "--server-side", "--force-conflicts", *arguments, timeout=300)
    log(f"  custom resources: {len(paths)} definitions (Argo {ARGO_VERSION}, KFP, KServe {KSERVE_VERSION})")
    return {yaml.safe_load(path.read_text())["metadata"]["name"] for path in paths}


def established(listed: dict) -> set[str]:
    """The names of the definitions in a `kubectl get crd -o json` whose condition Established is True."""
    return {
        item["metadata"]["name"]
        for item in listed["items"]
        for condition in item.get("status", {}).get("conditions") or []
        if condition["type"] == "Established" and condition["status"] == "True"
    }
