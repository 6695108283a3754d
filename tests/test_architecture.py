"""The layout's import rules (`[tool.importlinter]` in pyproject.toml), as `make test` checks them: a copy
of the code with one forbidden import planted fails `lint-imports`, naming both sides; as it is, it passes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _copy_code(root: Path) -> None:
    """The configuration and every Python module of the checked packages, in `root`."""
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    for package in CONFIG["root_packages"]:
        for source in (REPO / package).rglob("*.py"):
            target = root / source.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` over the packages in `root` (first on the path: the project is installed editable)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("code")
    _copy_code(root)
    return root


def test_the_code_as_it_is_keeps_every_contract(code: Path) -> None:
    linted = _lint_imports(code)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "0 broken" in linted.stdout, linted.stdout


@pytest.mark.parametrize(
    ("module", "imported", "importer", "importee"),
    [
        # a step importing another step: what they share belongs in core
        (
            "components/scoring/score.py",
            "components.features.materialize",
            "components.scoring",
            "components.features",
        ),
        # the library reaching up into a stage
        (
            "components/core/settings.py",
            "components.training.train",
            "components.core",
            "components.training",
        ),
        # the model server reaching into a step
        ("serving/server.py", "components.monitoring.monitor", "serving", "components.monitoring"),
        # the declarative feature repository importing a step
        (
            "feature_repo/feature_views.py",
            "components.features.materialize",
            "feature_repo",
            "components.features",
        ),
        # a step importing the CLI
        ("components/deployment/deploy.py", "pipelines.cli", "components.deployment", "pipelines"),
        # the platform importing test helpers
        ("pipelines/demo.py", "testing.stack", "pipelines", "testing"),
        # a benchmark importing a test folder's module instead of `testing`
        ("bench/scale.py", "tests.stack.conftest", "bench", "tests"),
        # one test folder importing another's
        ("tests/e2e/test_crash_safety.py", "tests.stack.conftest", "tests.e2e", "tests.stack"),
    ],
)
def test_a_forbidden_import_fails_naming_both_sides(
    code: Path, tmp_path: Path, module: str, imported: str, importer: str, importee: str
) -> None:
    root = tmp_path / "code"
    shutil.copytree(code, root)
    with (root / module).open("a") as source:
        source.write(f"\nimport {imported}  # noqa: E402\n")
    linted = _lint_imports(root)
    assert linted.returncode == 1, linted.stdout + linted.stderr
    assert f"{importer} is not allowed to import {importee}:" in linted.stdout, linted.stdout
    assert f"{module.removesuffix('.py').replace('/', '.')} -> {imported}" in linted.stdout, linted.stdout
