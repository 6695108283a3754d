"""The platform image built here (BuildKit, the Debian base, no registry), imported into a real node, and a
pod of it running as the manifests run it: user 10001, a read-only root, Pod Security `restricted`."""

from __future__ import annotations

import time

import pytest

from components.core.settings import get_settings
from infrastructure.apiserver.build import BuildError
from infrastructure.images.build import Built, build_images, import_into_node
from infrastructure.node.node import kubectl
from tests.node.conftest import TIMINGS, RunningNode, apply, restricted_namespace

NAMESPACE = "images-test"


@pytest.fixture(scope="module")
def platform_image(node: RunningNode) -> Built:
    """The platform image (built unless cached), imported into the node's containerd."""
    started = time.monotonic()
    (built,) = build_images(["platform"], log=lambda line: None)
    what = "built" if built.built else "found in the cache"
    TIMINGS[f"platform image {what}"] = time.monotonic() - started
    started = time.monotonic()
    import_into_node([built], node.config, log=lambda line: None)
    TIMINGS["platform image imported"] = time.monotonic() - started
    return built


def _pod(name: str, image: str, command: list[str]) -> dict:
    """A pod as the manifests write one: user 10001, read-only root, an `emptyDir` on /tmp."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": name,
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": command,
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "128Mi"},
                        "limits": {"cpu": "1", "memory": "512Mi"},
                    },
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


def _finished(node: RunningNode, pod: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    jsonpath = ["-o", "jsonpath={.status.phase}"]
    while True:
        done = kubectl(node.config, "-n", NAMESPACE, "get", "pod", pod, *jsonpath, check=False)
        if done.stdout.strip() in ("Succeeded", "Failed"):
            return done.stdout.strip()
        if time.monotonic() > deadline:
            described = kubectl(node.config, "-n", NAMESPACE, "describe", "pod", pod, check=False).stdout
            pytest.fail(f"pod {pod} did not finish in {timeout:.0f} s:\n{described[-3000:]}")
        time.sleep(0.5)


def test_platform_pod_imports_the_platform_as_user_10001_on_a_read_only_root(
    node: RunningNode, platform_image: Built
) -> None:
    restricted_namespace(node, NAMESPACE)
    # the name the manifests use (`lakehouse-mlops:0.1.0`): the node resolves it with no registry
    image = get_settings("cluster").image
    script = (
        "import os, components, serving; print('uid', os.getuid());"
        "print('exports', os.path.exists('/app/data'), os.environ['LAKEHOUSE_DATA_DIR']); open('/app/x', 'w')"
    )
    started = time.monotonic()
    apply(node, _pod("platform", image, ["python", "-c", script]))
    phase = _finished(node, "platform")
    TIMINGS["platform pod created, run and finished"] = time.monotonic() - started
    logs = kubectl(node.config, "-n", NAMESPACE, "logs", "platform").stdout
    # the imports succeed as 10001, then the write to the root filesystem is refused
    assert phase == "Failed", logs
    assert "uid 10001" in logs and "Read-only file system" in logs, logs
    assert "exports False /tmp/lakehouse/data" in logs, "the image holds code only; the exports go to /tmp"


def test_second_build_is_a_no_op(platform_image: Built) -> None:
    started = time.monotonic()
    (again,) = build_images(["platform"], log=lambda line: None)
    seconds = time.monotonic() - started
    TIMINGS["platform image, second build (cache hit)"] = seconds
    assert not again.built and again.tarball == platform_image.tarball
    assert seconds < 15


@pytest.mark.node
def test_a_failed_build_names_the_image_and_the_step(tmp_path, monkeypatch) -> None:
    """A Dockerfile step that fails: the error names the image and that step (the base and BuildKit are the
    cached ones; nothing is left in the cache)."""
    from infrastructure.images import build as build_module
    from infrastructure.images.recipes import ImageRecipe

    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "ARG BASE_IMAGE=localhost/debian-python:3.11-bookworm\n"
        "FROM ${BASE_IMAGE}\n"
        "RUN echo preparing && exit 3\n"
    )
    recipe = ImageRecipe("broken", "localhost/broken:1", dockerfile, lambda cache, log: tmp_path, "a test")
    monkeypatch.setattr(build_module, "recipes", lambda: {"broken": recipe})
    with pytest.raises(BuildError) as failed:
        build_images(["broken"], log=lambda line: None)
    message = str(failed.value)
    assert "image broken (localhost/broken:1)" in message
    assert "echo preparing && exit 3" in message.splitlines()[0]
    assert not list((build_module.CACHE / "oci").glob("broken-*"))
