"""Cache keys and helpers of the images built here, without a node, BuildKit or debootstrap."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infrastructure.apiserver.build import BuildError
from infrastructure.cluster.policy import hadolint_findings
from infrastructure.images.base import base_recipe, debian_mirror, recipe_key
from infrastructure.images.build import select
from infrastructure.images.buildkit import build_command, failing_step, module_files
from infrastructure.images.keys import context_files, copied_sources, ignored, image_key
from infrastructure.images.recipes import REPO_ROOT, SERVICES, qualified

DOCKERFILE = """\
ARG BASE_IMAGE=python:3.11.14-slim-bookworm
FROM ${BASE_IMAGE} AS build
COPY pyproject.toml uv.lock ./
COPY src/ src/
COPY --chmod=0755 run.sh /usr/local/bin/run.sh
FROM ${BASE_IMAGE}
COPY --from=build /app /app
"""


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / ".dockerignore").write_text("**/__pycache__\nsrc/target\n")
    for name, text in {
        "pyproject.toml": "[project]\n",
        "uv.lock": "lock\n",
        "run.sh": "#!/bin/sh\n",
        "src/app.py": "print(1)\n",
        "notes.txt": "not copied\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def _key(context: Path, **extra: str) -> str:
    return image_key(context / "Dockerfile", context, extra={"base": "sha256:1", **extra})


def test_copied_sources_leave_out_copies_between_stages():
    assert copied_sources(DOCKERFILE) == ["pyproject.toml", "uv.lock", "src/", "run.sh"]


def test_bind_mounted_sources_count_and_secrets_do_not():
    lines = [
        "FROM x",
        "RUN --mount=type=secret,id=ca-bundle \\",
        "    --mount=type=bind,source=plugin.zip,target=/p.zip unzip /p.zip",
        "RUN --mount=type=bind,from=build,source=/app,target=/a true",
    ]
    assert copied_sources("\n".join(lines)) == ["plugin.zip"]


def test_dockerignore_patterns_match_at_any_depth_and_below_folders():
    patterns = ["**/__pycache__", "dbt/target", "*.env"]
    assert ignored("components/x/__pycache__/a.pyc", patterns)
    assert ignored("dbt/target/run.json", patterns)
    assert ignored("secrets.env", patterns)
    assert not ignored("dbt/models/a.sql", patterns)


def test_key_is_stable_and_follows_copied_files_only(context: Path):
    first = _key(context)
    assert _key(context) == first
    (context / "notes.txt").write_text("changed, but never copied\n")
    (context / "src" / "__pycache__").mkdir()
    (context / "src" / "__pycache__" / "app.pyc").write_bytes(b"\0")
    assert _key(context) == first
    (context / "src" / "app.py").write_text("print(2)\n")
    assert _key(context) != first


@pytest.mark.parametrize("change", ["lock", "dockerfile", "base", "new file"])
def test_key_changes_with_the_lock_the_dockerfile_the_base_and_new_sources(context: Path, change: str):
    first = _key(context)
    if change == "lock":
        (context / "uv.lock").write_text("lock 2\n")
        assert _key(context) != first
    elif change == "dockerfile":
        (context / "Dockerfile").write_text(DOCKERFILE + "ENV X=1\n")
        assert _key(context) != first
    elif change == "base":
        assert _key(context, base="sha256:2") != first
    else:
        (context / "src" / "new.py").write_text("\n")
        assert _key(context) != first


def test_a_missing_copied_source_is_named(context: Path):
    (context / "uv.lock").unlink()
    with pytest.raises(FileNotFoundError, match="uv.lock"):
        context_files(context, ["uv.lock"], [])


def test_platform_key_covers_the_repositorys_sources():
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert {"uv.lock", "components/", "serving/"} <= set(copied_sources(text))
    assert "ARG BASE_IMAGE=python:3.11.14-slim-bookworm" in text


def test_base_recipe_key_changes_with_its_packages():
    assert recipe_key(base_recipe()) == recipe_key(base_recipe())
    assert recipe_key(base_recipe(("python3", "curl"))) != recipe_key(base_recipe())


def test_mirror_is_read_from_one_line_and_deb822_sources(tmp_path: Path):
    line = "deb [arch=amd64] http://one.example/debian bookworm main"
    (tmp_path / "sources.list").write_text(f"# none\n{line}\n")
    assert debian_mirror([tmp_path / "sources.list"]) == "http://one.example/debian"
    folder = tmp_path / "sources.list.d"
    folder.mkdir()
    (folder / "debian.sources").write_text(
        "Types: deb\nURIs: http://two.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://two.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert debian_mirror([tmp_path / "missing", folder]) == "http://two.example/debian"
    with pytest.raises(BuildError, match="no apt source for Debian bookworm"):
        debian_mirror([tmp_path / "missing"])


def test_image_names_are_qualified_as_the_cri_looks_them_up():
    assert qualified("lakehouse-mlops:0.1.0") == "docker.io/library/lakehouse-mlops:0.1.0"
    assert qualified("team/app:1") == "docker.io/team/app:1"
    assert qualified("localhost/postgres:15") == "localhost/postgres:15"
    assert qualified("registry.example:5000/app:1") == "registry.example:5000/app:1"


def test_unknown_image_names_the_known_ones():
    with pytest.raises(BuildError, match="unknown image nope: the images are platform"):
        select(["nope"])


def test_buildkit_wrapper_module_imports_both_commands():
    files = module_files("v0.34.2")
    assert "require github.com/moby/buildkit v0.34.2" in files["go.mod"]
    assert '_ "github.com/moby/buildkit/cmd/buildkitd"' in files["tools.go"]
    assert '_ "github.com/moby/buildkit/cmd/buildctl"' in files["tools.go"]


def test_build_command_serves_the_base_from_a_local_layout(tmp_path: Path):
    from infrastructure.images.buildkit import Daemon

    daemon = Daemon(tmp_path / "buildkitd.sock", Path("/bin/buildctl"), 1)
    layouts = {"localhost/base:1": (tmp_path / "layout", "sha256:abc")}
    command = build_command(
        daemon, tmp_path, tmp_path / "Dockerfile", tmp_path / "out.tar", "x:1", {"BASE_IMAGE": "b"}, layouts
    )
    assert f"--oci-layout=layout0={tmp_path / 'layout'}" in command
    assert "--opt=context:localhost/base:1=oci-layout://layout0@sha256:abc" in command
    assert f"--output=type=oci,dest={tmp_path / 'out.tar'},name=x:1" in command
    assert "--opt=build-arg:BASE_IMAGE=b" in command


def test_failing_step_is_named_from_buildctl_progress():
    progress = (
        "#9 [build 4/9] RUN uv sync --locked\n#9 ERROR: process did not complete successfully\n"
        'error: failed to solve: process "/bin/sh -c uv sync --locked" did not complete successfully\n'
    )
    assert failing_step(progress).startswith('process "/bin/sh -c uv sync --locked"')
    assert failing_step("nothing useful\n") == "an unnamed step"


@pytest.mark.parametrize(
    "dockerfile", sorted(SERVICES.glob("*/Dockerfile")), ids=lambda path: path.parent.name
)
def test_service_dockerfiles_pass_hadolint(dockerfile: Path):
    assert hadolint_findings(dockerfile) == []


def test_the_platform_image_holds_no_export_files():
    """Names and e-mail addresses stay out of the image: no line copies `data/`, `.dockerignore` leaves it
    out of the context (a later `COPY . .` included), and the step's data folder is under /tmp."""
    from infrastructure.images.keys import ignore_patterns

    text = (REPO_ROOT / "Dockerfile").read_text()
    assert not [source for source in copied_sources(text) if source.rstrip("/") in ("data", ".")]
    patterns = ignore_patterns(REPO_ROOT / ".dockerignore")
    assert ignored("data/customers.csv", patterns) and ignored("data", patterns)
    (data_dir,) = re.findall(r"LAKEHOUSE_DATA_DIR=(\S+)", text)
    assert data_dir.startswith("/tmp/"), "the exports go to the writable scratch space"
