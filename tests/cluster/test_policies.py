"""A maintained policy engine (checkov) on every rendered manifest and hadolint on the Dockerfile: no finding,
or each exception justified inline in the manifest; both engines do flag a bad copy."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from components.deployment.deploy import render_inference_service
from infrastructure.cluster.manifests import OVERLAYS, objects, render
from infrastructure.cluster.policy import (
    DOCKERFILE,
    PolicyToolMissing,
    checkov_binary,
    checkov_findings,
    hadolint_findings,
)
from testing.manifests import dump, filled_copy, workloads
from testing.prerequisites import unavailable


@pytest.fixture(scope="module")
def checkov() -> Path:
    try:
        return checkov_binary()
    except PolicyToolMissing as exc:
        unavailable(str(exc))


@pytest.fixture(scope="module")
def rendered_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both overlays and the InferenceService, rendered into one folder."""
    root = tmp_path_factory.mktemp("policy")
    manifests = filled_copy(root / "kubernetes")
    out = root / "rendered"
    out.mkdir()
    for overlay in OVERLAYS:
        (out / f"{overlay}.yaml").write_text(render(overlay, manifests))
    (out / "inferenceservice.yaml").write_text(yaml.safe_dump(render_inference_service("1")))
    return out


def test_checkov_finds_nothing_in_the_manifests(checkov, rendered_dir):
    assert checkov_findings(rendered_dir) == []


def test_checkov_flags_a_privileged_container_without_limits(checkov, rendered_dir, tmp_path):
    good = next(
        w for w in workloads(objects((rendered_dir / "dev.yaml").read_text())) if w["kind"] == "Deployment"
    )
    bad = copy.deepcopy(good)
    container = bad["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"] = {"privileged": True}
    del container["resources"]["limits"]
    (tmp_path / "bad.yaml").write_text(dump([bad]))
    checks = {line.split()[1] for line in checkov_findings(tmp_path / "bad.yaml")}
    assert {"CKV_K8S_16", "CKV_K8S_11", "CKV_K8S_13"} <= checks  # privileged, no CPU limit, no memory limit


def test_hadolint_finds_nothing_in_the_dockerfile():
    assert hadolint_findings(DOCKERFILE) == []


def test_hadolint_flags_an_unpinned_root_image(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install uv\n")
    rules = " ".join(hadolint_findings(bad))
    assert "DL3007" in rules and "DL3013" in rules  # latest tag, unpinned pip package
