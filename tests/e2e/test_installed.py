"""The platform installed from its wheel into a fresh virtual environment, used outside any checkout: the
commands find the dbt project, the Feast repository, the profiles and the manifests inside the package, and
keep their state and data in the working folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing.prerequisites import unavailable

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
#: The uv `make install` bootstraps; any uv on the PATH otherwise.
UV = REPO / ".cache" / "uv-bootstrap" / "bin" / "uv"


@dataclass(frozen=True)
class Installed:
    venv: Path
    work: Path
    env: dict[str, str]

    def lakehouse(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.venv / "bin" / "lakehouse"), *args],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    @property
    def site_packages(self) -> Path:
        return next((self.venv / "lib").glob("python3*/site-packages"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel built from this checkout, installed with the lock file's versions, and an empty folder."""
    uv = str(UV) if UV.is_file() else shutil.which("uv")
    if uv is None:
        unavailable("no uv to build and install the wheel with (`make install` bootstraps one)", "uv")
    root = tmp_path_factory.mktemp("installed")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LAKEHOUSE_", "VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT"))
    }
    env["UV_PYTHON_DOWNLOADS"] = "never"

    def uv_run(*args: str) -> None:
        done = subprocess.run([uv, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"uv {' '.join(args)}:\n{done.stdout}\n{done.stderr}"

    uv_run("build", "--wheel", "--out-dir", str(root / "wheel"))
    uv_run("export", "--locked", "--no-dev", "--no-emit-project", "--no-hashes", "-o", str(root / "req.txt"))
    uv_run("venv", "--quiet", str(root / "venv"), "--python", sys.executable)
    (wheel,) = (root / "wheel").glob("*.whl")
    python = str(root / "venv" / "bin" / "python")
    uv_run(
        "pip", "install", "--quiet", "--python", python, "--no-deps", "-r", str(root / "req.txt"), str(wheel)
    )
    work = root / "work"
    work.mkdir()
    return Installed(root / "venv", work, env)


def test_the_installed_commands_run_the_pipeline_in_an_empty_folder(installed: Installed) -> None:
    generated = installed.lakehouse("data", "generate", "--scale", "0.05", "--no-dvc")
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert (installed.work / "data" / "customers.csv").is_file()

    ran = installed.lakehouse("run")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert '"decision": "first_champion"' in ran.stdout, ran.stdout[-3000:]
    state = installed.work / ".lakehouse"
    assert (state / "mlflow.db").is_file() and (state / "catalog.db").is_file()
    # nothing is written beside the code
    assert not (installed.site_packages / ".lakehouse").exists()
    assert not (installed.site_packages / "components" / "transformation" / "dbt" / "target").exists()

    lineage = installed.lakehouse("lineage")
    assert lineage.returncode == 0 and "(alias champion)" in lineage.stdout, lineage.stdout + lineage.stderr


def test_the_installed_cluster_commands_find_their_files(installed: Installed) -> None:
    compiled = installed.lakehouse("compile", "--profile", "cluster", "--output", "churn.yaml")
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    assert "churn-training" in (installed.work / "churn.yaml").read_text()
    # the manifests are in the package; the Secrets' env files are the user's to write
    manifests = installed.lakehouse("manifests", "--overlay", "dev")
    assert manifests.returncode == 2, manifests.stdout + manifests.stderr
    assert "secrets" in manifests.stderr and ".env" in manifests.stderr, manifests.stderr
