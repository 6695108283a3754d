"""The wrapper modules the node's programs are built in, KFP's UI build, and their image recipes, without
building them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infrastructure.apiserver.build import (
    BuildError,
    GoCommand,
    module_directives,
    module_go_version,
    wrapper_files,
)
from infrastructure.images.build import select
from infrastructure.images.frontend import (
    DROPPED_DEV_DEPENDENCIES,
    drop_dev_dependencies,
    npm_environment,
    recipe_key,
    ui_folder,
)
from infrastructure.images.programs import ARGO_COMMANDS, ARGO_MISSING, KFP_COMMANDS, _patched_argo
from infrastructure.images.recipes import SERVICES

GOMOD = """\
module example.com/tool

go 1.23.1

require (
\tk8s.io/api v0.35.0
\texample.com/old v1.0.0 // indirect
)

// KEDA needs the older controller-runtime
exclude example.com/grpc/stats v0.0.0-00010101000000-000000000000

replace sigs.k8s.io/controller-runtime => sigs.k8s.io/controller-runtime v0.22.5 // pinned

replace (
\tk8s.io/api => k8s.io/api v0.34.5
\tk8s.io/code-generator => ./staging/src/k8s.io/code-generator

\texample.com/fork => ../fork
\texample.com/moved => example.com/new v1.0.4
)

exclude (
\texample.com/bad v1.2.3
)
"""


def test_wrapper_repeats_the_modules_replace_and_exclude_lines_but_not_relative_paths():
    assert module_directives(GOMOD) == [
        "exclude example.com/grpc/stats v0.0.0-00010101000000-000000000000",
        "replace sigs.k8s.io/controller-runtime => sigs.k8s.io/controller-runtime v0.22.5",
        "replace k8s.io/api => k8s.io/api v0.34.5",
        "replace example.com/moved => example.com/new v1.0.4",
        "exclude example.com/bad v1.2.3",
    ]
    commands = [GoCommand("cmd/tool"), GoCommand("cmd/agent", "tool-agent", cgo=True, tags=("netgo",))]
    files = wrapper_files("example.com/tool", "v1.2.0", commands, GOMOD)
    gomod = files["go.mod"]
    assert gomod.startswith("module lakehouse.local/build\n\ngo 1.23.1\n\nrequire example.com/tool v1.2.0\n")
    assert "replace k8s.io/api => k8s.io/api v0.34.5\n" in gomod
    assert "exclude example.com/bad v1.2.3\n" in gomod
    assert "./staging" not in gomod and "../fork" not in gomod and "indirect" not in gomod
    assert '_ "example.com/tool/cmd/tool"' in files["tools.go"]
    assert '_ "example.com/tool/cmd/agent"' in files["tools.go"]
    assert files["tools.go"].startswith("//go:build tools\n")
    assert [command.binary for command in commands] == ["tool", "tool-agent"]


def test_wrapper_go_line_is_the_modules_raised_to_go_1_21():
    assert module_go_version("module m\n\ngo 1.13\n") == "1.21"
    assert module_go_version("module m\n\ngo 1.25.8\n") == "1.25.8"
    assert module_go_version("module m\n") == "1.21"


def test_kfp_and_argo_commands_are_named_as_upstreams_images_run_them():
    assert [command.binary for command in KFP_COMMANDS] == [
        "apiserver",
        "persistence_agent",
        "scheduledworkflow_controller",
        "driver",
        "launcher-v2",
    ]
    apiserver = KFP_COMMANDS[0]
    assert apiserver.cgo and apiserver.tags == ("netgo", "osusergo")
    assert not any(command.cgo for command in KFP_COMMANDS[1:])
    assert [command.binary for command in ARGO_COMMANDS] == ["workflow-controller", "argoexec"]


def test_program_images_are_registered():
    found = {recipe.short: recipe for recipe in select(["argo", "kfp-backend", "kserve-controller"])}
    assert found["argo"].name == "localhost/argo:v3.6.12"
    assert found["kfp-backend"].name == "localhost/kfp-backend:2.0.5"
    assert found["kserve-controller"].name == "localhost/kserve-controller:v0.20.0"
    for short, recipe in found.items():
        assert recipe.dockerfile == SERVICES / short / "Dockerfile"
        assert "USER 10001:10001" in recipe.dockerfile.read_text()


def test_argo_is_built_from_a_writable_copy_holding_the_file_its_zip_lacks(tmp_path: Path):
    missing, original = ARGO_MISSING
    module = tmp_path / "modcache" / "argo@v3.6.12"
    (module / missing).parent.mkdir(parents=True)
    (module / missing).with_name(original).write_text("package os_specific\n")
    (module / "go.mod").write_text("module github.com/argoproj/argo-workflows/v3\n")
    for path in [*module.rglob("*"), module]:  # as read-only as Go's module cache
        path.chmod(0o555 if path.is_dir() else 0o444)
    workdir = tmp_path / "programs" / "module"
    workdir.mkdir(parents=True)
    for _ in range(2):  # a second build replaces the first copy
        (line,) = _patched_argo(workdir, {"Dir": str(module)})
        copy = workdir.parent / "patched-module"
        assert line == f"replace github.com/argoproj/argo-workflows/v3 => {copy}"
        assert (copy / missing).read_text() == "package os_specific\n"
    assert not (module / missing).exists()


def test_kfp_ui_image_is_registered_over_the_built_ui():
    (recipe,) = select(["kfp-ui"])
    assert recipe.name == "localhost/kfp-ui:2.0.5"
    assert recipe.stands_in_for == "gcr.io/ml-pipeline/frontend:2.0.5"
    text = recipe.dockerfile.read_text()
    assert recipe.dockerfile == SERVICES / "kfp-ui" / "Dockerfile"
    assert "USER 10001:10001" in text and "ENV HOME=/tmp" in text
    assert 'CMD ["node", "--require", "./signals.js", "dist/server.js", "../client/", "3000"]' in text
    assert ui_folder().name == f"kfp-ui-2.0.5-{recipe_key()}"


def test_kfp_ui_lockfile_change_drops_the_placeholder_and_refuses_a_stale_one(tmp_path: Path):
    package = {"devDependencies": {"fs": "0.0.1-security", "typescript": "^3.8.3"}}
    lock = {"lockfileVersion": 1, "dependencies": {"fs": {"version": "0.0.1-security"}, "ts": {}}}
    (tmp_path / "package.json").write_text(json.dumps(package))
    (tmp_path / "package-lock.json").write_text(json.dumps(lock))
    drop_dev_dependencies(tmp_path, DROPPED_DEV_DEPENDENCIES)
    assert json.loads((tmp_path / "package.json").read_text())["devDependencies"] == {"typescript": "^3.8.3"}
    assert json.loads((tmp_path / "package-lock.json").read_text())["dependencies"] == {"ts": {}}
    with pytest.raises(BuildError, match="drop it from DROPPED_DEV_DEPENDENCIES"):
        drop_dev_dependencies(tmp_path, DROPPED_DEV_DEPENDENCIES)


def test_kfp_ui_npm_runs_on_its_own_node_without_the_hosts_npm_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("npm_config_nodedir", "/usr")
    monkeypatch.setenv("NODE_OPTIONS", "--inspect")
    env = npm_environment(tmp_path)
    assert env["PATH"].startswith(f"{tmp_path / 'bin'}:")
    assert "npm_config_nodedir" not in env and "NODE_OPTIONS" not in env
    assert env["npm_config_userconfig"] == env["npm_config_globalconfig"] == str(tmp_path / "etc" / "npmrc")
    assert env["npm_config_cache"].endswith("/.cache/npm")
