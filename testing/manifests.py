"""Helpers of the cluster tests: a filled-in copy of the manifests, pods from workload templates, timings."""

from __future__ import annotations

import copy
import secrets
import shutil
import time
from pathlib import Path

import yaml

from infrastructure.apiserver.server import ApiServer
from infrastructure.cluster.manifests import KUBERNETES_DIR, OPTIONAL_KEYS, env_keys

#: What the cluster tests measured, printed at the end of the session.
TIMINGS: dict[str, float] = {}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def filled_copy(dest: Path) -> Path:
    """Copy `infrastructure/kubernetes/` to `dest` with every Secret env file written from its example (the
    keys that may be empty left empty: no alert webhook)."""
    shutil.copytree(KUBERNETES_DIR, dest, ignore=shutil.ignore_patterns("*.env"))
    for example in dest.rglob("*.env.example"):
        lines = [
            f"{key}=" if key in OPTIONAL_KEYS else f"{key}=test-{secrets.token_hex(8)}"
            for key in env_keys(example)
        ]
        example.with_suffix("").write_text("\n".join(lines) + "\n")
    return dest


def dump(objects: list[dict]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)


def workloads(objects: list[dict]) -> list[dict]:
    return [obj for obj in objects if obj["kind"] in WORKLOAD_KINDS]


def pod_from(workload: dict) -> dict:
    """The Pod a controller would create from a workload's template (name and namespace of the workload)."""
    template = copy.deepcopy(workload["spec"]["template"])
    metadata = {**template.get("metadata", {}), "name": f"{workload['metadata']['name']}-pod"}
    metadata["namespace"] = workload["metadata"].get("namespace", "lakehouse")
    spec = template["spec"]
    for claim in workload["spec"].get("volumeClaimTemplates", []):  # what the StatefulSet controller adds
        name = claim["metadata"]["name"]
        claim_name = f"{name}-{workload['metadata']['name']}-0"
        spec.setdefault("volumes", []).append(
            {"name": name, "persistentVolumeClaim": {"claimName": claim_name}}
        )
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def warnings(stderr: str) -> list[str]:
    """The `Warning:` lines kubectl printed (Pod Security `warn` mode reports through them)."""
    return [line for line in stderr.splitlines() if line.startswith("Warning:")]


def install_platform_scaffolding(api: ApiServer, objects: list[dict], timeout: float = 30.0) -> None:
    """Create for real what admission of the other objects depends on: the namespace (with its Pod Security
    labels), the admission policy and its binding, and the ServiceAccounts (the `default` one included, which
    no controller creates here); wait until the policy denies a workload without limits."""
    keep = {"Namespace", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ServiceAccount"}
    chosen = [obj for obj in objects if obj["kind"] in keep]
    default_sa = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": "lakehouse"},
    }
    api.apply(dump([*chosen, default_sa]))
    probe = next(w for w in workloads(objects) if w["kind"] == "Deployment")
    unlimited = copy.deepcopy(probe)
    for container in unlimited["spec"]["template"]["spec"]["containers"]:
        container.pop("resources", None)
    deadline = time.monotonic() + timeout
    while api.apply(dump([unlimited]), "--dry-run=server", check=False).returncode == 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the admission policy did not take effect within {timeout:.0f} s")
        time.sleep(0.3)
