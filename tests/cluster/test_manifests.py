"""The kustomize overlays render, the real API server accepts every object, and rejects bad copies."""

from __future__ import annotations

import copy
import re
import time

import pytest

from infrastructure.cluster.manifests import OVERLAYS, ManifestError, objects, render
from pipelines.cli import main
from testing.manifests import (
    TIMINGS,
    dump,
    filled_copy,
    pod_from,
    warnings,
    workloads,
)


def _containers(workload: dict) -> list[dict]:
    spec = workload["spec"]["template"]["spec"]
    return spec["containers"] + spec.get("initContainers", [])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_hardened_workloads_in_the_namespace(rendered, overlay):
    objs = rendered[overlay]
    # the node installs KServe's controller in its own namespace, as upstream's install does elsewhere
    namespaces = {"lakehouse", "kserve"} if overlay == "node" else {"lakehouse"}
    assert {
        o["metadata"].get("namespace", "lakehouse") for o in objs if o["kind"] != "Namespace"
    } <= namespaces
    names = {w["metadata"]["name"] for w in workloads(objs)}
    assert names >= {"minio", "postgres", "polaris", "polaris-setup", "trino-coordinator"}
    # Polaris' realm bootstrap, where Polaris runs
    assert ("polaris-bootstrap" in names) == (overlay != "node")
    assert names >= {"trino-worker", "mlflow", "redis", "feast-feature-server", "object-store-setup"}
    for workload in workloads(objs):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in _containers(workload):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {
                "drop": ["ALL"]
            }
            assert context["readOnlyRootFilesystem"] is True
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    secrets = [o for o in objs if o["kind"] == "Secret"]
    assert {s["metadata"]["name"] for s in secrets} >= {"lakehouse-credentials", "postgres", "polaris-root"}


def test_prod_scales_trino_out_with_larger_limits(rendered):
    def worker(overlay: str) -> dict:
        return next(w for w in workloads(rendered[overlay]) if w["metadata"]["name"] == "trino-worker")

    dev, prod = worker("dev"), worker("prod")
    assert (dev["spec"]["replicas"], prod["spec"]["replicas"]) == (1, 4)
    limits = [
        w["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] for w in (dev, prod)
    ]
    assert limits == ["2Gi", "16Gi"]


def _credentials_on_command_lines(objs: list[dict]) -> dict[str, list[str]]:
    """Workload -> the credentials its containers (init containers too) get on a command line by `$(VAR)`."""
    found = {}
    for workload in workloads(objs):
        for container in _containers(workload):
            words = [*container.get("command", []), *container.get("args", [])]
            named = {m for word in words for m in re.findall(r"\$\(([A-Z0-9_]+)\)", word)}
            secret = sorted(n for n in named if any(k in n for k in ("PASSWORD", "SECRET", "KEY")))
            if secret:
                found[workload["metadata"]["name"]] = secret
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_credential_is_put_on_a_command_line_by_the_kubelet(rendered, overlay):
    """`$(VAR)` in a container's command or args is expanded by the kubelet into the process's argv (readable
    in /proc by other processes); credentials go by environment, files or standard input instead."""
    assert _credentials_on_command_lines(rendered[overlay]) == {}
    planted = copy.deepcopy(rendered[overlay])
    container = _containers(workloads(planted)[0])[-1]
    container["args"] = [*container.get("args", []), "--password=$(MINIO_ROOT_PASSWORD)"]
    assert list(_credentials_on_command_lines(planted).values()) == [["MINIO_ROOT_PASSWORD"]], (
        "the check works"
    )


def test_polaris_bootstrap_reads_the_root_credential_from_a_file_its_init_container_writes(
    rendered, tmp_path
):
    """The init container's own command, run by a real shell with the Secret's keys as its environment,
    writes the credentials file the admin tool's `--credentials-file` reads (YAML: realm -> client-id,
    client-secret), readable by its owner only; the secret is on no process's command line."""
    import subprocess

    import yaml

    (job,) = [w for w in workloads(rendered["dev"]) if w["metadata"]["name"] == "polaris-bootstrap"]
    spec = job["spec"]["template"]["spec"]
    (writer,) = spec["initContainers"]
    (tool,) = spec["containers"]
    mount = {m["name"]: m["mountPath"] for m in writer["volumeMounts"]}["bootstrap"]
    assert {"name": "bootstrap", "mountPath": mount, "readOnly": True} in tool["volumeMounts"]
    assert {"name": "bootstrap", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}} in spec["volumes"]
    assert tool["args"] == ["bootstrap", f"--credentials-file={mount}/credentials.yaml"]
    assert not any("polaris-root" in str(source) for source in tool.get("envFrom", []))

    command = [word.replace(mount, str(tmp_path)) for word in writer["command"]]
    secret = "s3cr-et_value.~9"  # pragma: allowlist secret
    env = {"PATH": "/usr/bin:/bin", "POLARIS_ROOT_CLIENT_ID": "root-id", "POLARIS_ROOT_CLIENT_SECRET": secret}
    subprocess.run(command, env=env, check=True)
    written = tmp_path / "credentials.yaml"
    assert yaml.safe_load(written.read_text()) == {
        "POLARIS": {"client-id": "root-id", "client-secret": secret}
    }
    assert written.stat().st_mode & 0o777 == 0o600
    assert secret not in " ".join(command)


def test_prod_keeps_all_but_one_of_each_replicated_service_through_a_drain(rendered):
    """Each prod workload with several replicas has a disruption budget selecting exactly its pods."""
    budgets = [o for o in rendered["prod"] if o["kind"] == "PodDisruptionBudget"]
    replicated = [w for w in workloads(rendered["prod"]) if w["spec"].get("replicas", 1) > 1]
    assert {w["metadata"]["name"] for w in replicated} == {"trino-worker", "mlflow"}
    for workload in replicated:
        labels = workload["spec"]["template"]["metadata"]["labels"]
        (budget,) = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert budget["spec"]["maxUnavailable"] == 1 < workload["spec"]["replicas"]
    assert not [o for o in rendered["dev"] if o["kind"] == "PodDisruptionBudget"], "one replica each in dev"


def test_a_missing_secret_key_is_named_with_the_fix(tmp_path, capsys):
    root = filled_copy(tmp_path / "kubernetes")
    env_file = root / "base" / "secrets" / "postgres.env"
    env_file.write_text("\n".join(line for line in env_file.read_text().splitlines() if "MLFLOW" not in line))
    with pytest.raises(
        ManifestError, match=r"postgres.env has no key MLFLOW_DB_PASSWORD: add `MLFLOW_DB_PASSWORD=...`"
    ):
        render("dev", root)
    (root / "base" / "secrets" / "postgres.env").unlink()
    assert main(["manifests", "--overlay", "dev", "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "postgres.env is missing: cp " in err


def test_the_alert_webhook_may_stay_empty_a_password_may_not(tmp_path):
    root = filled_copy(tmp_path / "kubernetes")
    secrets = root / "base" / "secrets"
    assert (secrets / "alerts.env").read_text() == "LAKEHOUSE_ALERT_WEBHOOK_URL=\n"
    alerts = [o for o in objects(render("dev", root)) if o["metadata"]["name"] == "lakehouse-alerts"]
    assert alerts[0]["kind"] == "Secret" and alerts[0]["data"]["LAKEHOUSE_ALERT_WEBHOOK_URL"] == ""
    (secrets / "postgres.env").write_text("POSTGRES_PASSWORD=\nPOLARIS_DB_PASSWORD=a\nMLFLOW_DB_PASSWORD=b\n")
    with pytest.raises(ManifestError, match="postgres.env leaves POSTGRES_PASSWORD empty"):
        render("dev", root)


@pytest.mark.parametrize(
    ("file", "line", "problem"),
    [
        (
            "postgres.env",
            "POSTGRES_PASSWORD=short",
            "POSTGRES_PASSWORD has 5 characters: a secret needs at least 8",
        ),
        (
            "lakehouse-credentials.env",
            "AWS_ACCESS_KEY_ID=ab",
            "AWS_ACCESS_KEY_ID has 2 characters: an id needs",
        ),
        (
            "postgres.env",
            "MLFLOW_DB_PASSWORD=p@ss/word#1",
            "MLFLOW_DB_PASSWORD holds '#/@', which would break the URL",
        ),
        (
            "polaris-root.env",
            "POLARIS_ROOT_CLIENT_SECRET=it's,a:secret",
            'POLARIS_ROOT_CLIENT_SECRET holds "\',:", which would break the URL or file',
        ),
        (
            "alerts.env",
            "LAKEHOUSE_ALERT_WEBHOOK_URL=hooks.example",
            "LAKEHOUSE_ALERT_WEBHOOK_URL is not an http(s) URL",
        ),
    ],
)
def test_a_value_unfit_for_its_key_is_named_before_rendering(tmp_path, file, line, problem):
    root = filled_copy(tmp_path / "kubernetes")
    env_file = root / "base" / "secrets" / file
    key = line.split("=")[0]
    kept = [kept for kept in env_file.read_text().splitlines() if not kept.startswith(f"{key}=")]
    env_file.write_text("\n".join([*kept, line]) + "\n")
    with pytest.raises(ManifestError, match=re.escape(problem)):
        render("dev", root)


def test_one_s3_key_pair_for_two_clients_is_refused_naming_both_files(tmp_path):
    """Each client's key pair is an object-store user limited to what it reads and writes; Trino's pair
    copied into MLflow's file would make them one user."""
    root = filled_copy(tmp_path / "kubernetes")
    secrets = root / "base" / "secrets"
    (secrets / "mlflow-credentials.env").write_text((secrets / "trino-credentials.env").read_text())
    same = "trino-credentials.env and .*mlflow-credentials.env set the same"
    with pytest.raises(ManifestError, match=same):
        render("dev", root)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_server_accepts_every_object_without_warnings(lakehouse_namespace, rendered, overlay):
    started = time.monotonic()
    # other tests own some fields (a Secret's keys): a dry run may take them over
    done = lakehouse_namespace.apply(
        dump(rendered[overlay]), "--dry-run=server", "--force-conflicts", check=False
    )
    TIMINGS[f"server-side dry run of overlay {overlay} ({len(rendered[overlay])} objects)"] = (
        time.monotonic() - started
    )
    assert done.returncode == 0, done.stderr
    assert not warnings(done.stderr), done.stderr
    assert done.stdout.count("serverside-applied (server dry run)") == len(rendered[overlay])


def _differences(dev: object, node: object, path: str = "") -> list[str]:
    """The paths where two rendered objects differ (lists item by item)."""
    if isinstance(dev, dict) and isinstance(node, dict):
        return [
            d
            for key in dev.keys() | node.keys()
            for d in _differences(dev.get(key), node.get(key), f"{path}/{key}")
        ]
    if isinstance(dev, list) and isinstance(node, list) and len(dev) == len(node):
        return [
            d
            for i, (a, b) in enumerate(zip(dev, node, strict=True))
            for d in _differences(a, b, f"{path}/{i}")
        ]
    return [] if dev == node else [path]


def test_the_node_overlay_differs_from_dev_only_where_it_says(rendered):
    """Image names, pull policy, CPU requests, the annotation saying why, and the catalog in Polaris' place;
    everything else (probes, limits, security contexts, Secrets, policies) is `dev`'s."""
    dev = {(o["kind"], o["metadata"]["name"]): o for o in rendered["dev"]}
    node = {(o["kind"], o["metadata"]["name"]): o for o in rendered["node"]}
    assert dev.keys() - node.keys() == {("Job", "polaris-bootstrap")}
    # what the node adds is Kubeflow Pipelines' backend and Argo (pipelines/) in `lakehouse`, and KServe's
    # controller (serving/) in `kserve`, every pod of them hardened too
    added = {key for key in node.keys() - dev.keys()}
    assert {
        ("Deployment", "ml-pipeline"),
        ("Deployment", "workflow-controller"),
        ("StatefulSet", "mysql"),
        ("Deployment", "kserve-controller-manager"),
        ("Job", "kserve-webhook-cert"),
    } <= added
    namespaced = {key: node[key]["metadata"].get("namespace") for key in added}
    assert set(namespaced.values()) == {"lakehouse", "kserve", None}
    assert {key for key, namespace in namespaced.items() if namespace is None} == {
        ("Namespace", "kserve"),
        ("ClusterRole", "kserve-manager"),
        ("ClusterRoleBinding", "kserve-manager"),
        ("ClusterRole", "kserve-webhook-cert"),
        ("ClusterRoleBinding", "kserve-webhook-cert"),
        ("MutatingWebhookConfiguration", "inferenceservice.serving.kserve.io"),
        ("ValidatingWebhookConfiguration", "inferenceservice.serving.kserve.io"),
    }
    allowed = (
        "/metadata/annotations/checkov.io/skip4",
        "/spec/template/metadata/annotations/checkov.io/skip4",
        "/spec/template/spec/containers/0/image",
        "/spec/template/spec/containers/0/imagePullPolicy",
        "/spec/template/spec/containers/0/resources/requests/cpu",
    )
    for key in node.keys() & dev.keys():
        changed = [d for d in _differences(dev[key], node[key]) if d not in allowed]
        if key == ("Deployment", "polaris"):
            assert changed and all(d.startswith("/spec/template/spec/containers/0/") for d in changed)
        elif key == ("Job", "polaris-setup"):  # credentials only, the database account's too
            assert sorted(changed) == [
                "/spec/template/spec/containers/0/args",
                "/spec/template/spec/containers/0/env",
            ]
        elif key == ("Role", "polaris-setup"):
            assert changed == ["/rules/0/resourceNames"]
        else:
            assert not changed, f"{key}: {changed}"
    images = {
        c["image"] for w in workloads(rendered["node"]) for c in w["spec"]["template"]["spec"]["containers"]
    }
    assert all(image.startswith("localhost/") or image.startswith("lakehouse-mlops:") for image in images), (
        images
    )


@pytest.mark.parametrize("overlay", ["dev", "node"])
def test_every_pod_passes_pod_security_restricted(lakehouse_namespace, rendered, overlay):
    pods = [pod_from(w) for w in workloads(rendered[overlay])]
    done = lakehouse_namespace.kubectl("create", "--dry-run=server", "-f", "-", input=dump(pods), check=False)
    assert done.returncode == 0, done.stderr
    assert not warnings(done.stderr), done.stderr
    assert done.stdout.count("created (server dry run)") == len(pods)


def _deployment(rendered: dict[str, list[dict]]) -> dict:
    return copy.deepcopy(next(w for w in workloads(rendered["dev"]) if w["metadata"]["name"] == "mlflow"))


def test_a_privileged_container_is_rejected(lakehouse_namespace, rendered):
    bad = _deployment(rendered)
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    done = lakehouse_namespace.apply(dump([bad]), "--dry-run=server", check=False)
    assert any('violate PodSecurity "restricted' in line for line in warnings(done.stderr)), done.stderr
    done = lakehouse_namespace.kubectl(
        "create", "--dry-run=server", "-f", "-", input=dump([pod_from(bad)]), check=False
    )
    assert done.returncode != 0 and "privileged" in done.stderr, done.stderr


def test_an_unknown_field_is_rejected(lakehouse_namespace, rendered):
    bad = _deployment(rendered)
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    done = lakehouse_namespace.apply(dump([bad]), "--dry-run=server", check=False)
    assert done.returncode != 0, done.stdout
    assert "imagePullPolice: field not declared in schema" in done.stderr, done.stderr


def test_a_missing_limit_is_rejected(lakehouse_namespace, rendered):
    bad = _deployment(rendered)
    del bad["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    done = lakehouse_namespace.apply(dump([bad]), "--dry-run=server", check=False)
    assert done.returncode != 0, done.stdout
    assert "lakehouse-resources-required" in done.stderr and "missing in: mlflow" in done.stderr


def test_the_api_egress_policy_is_limited_to_the_addresses_given(lakehouse_namespace, capsys, tmp_path):
    """`lakehouse manifests --api-server`: the policy allows those addresses and ports only, everything else
    is the plain render, and the API server accepts the result. `from-cluster` reads them from the cluster:
    this API server lists none behind its `kubernetes` Service (it runs without an endpoint reconciler), and
    the command says so; with an EndpointSlice written as a control plane keeps it, it reads the Service's IP
    and that address (the node's test reads a real control plane's)."""
    from infrastructure.cluster.manifests import API_EGRESS_POLICY

    api = lakehouse_namespace
    root = filled_copy(tmp_path / "kubernetes")
    manifests = ["manifests", "--overlay", "dev", "--root", str(root)]
    from_cluster = [*manifests, "--api-server", "from-cluster", "--kubeconfig", str(api.kubeconfig)]
    assert main(manifests) == 0
    plain = capsys.readouterr()
    assert f"NetworkPolicy {API_EGRESS_POLICY} lets the pods" in plain.err
    given = ["--api-server", "10.96.0.1:443", "--api-server", "192.168.7.20:6443"]
    assert main([*manifests, *given]) == 0
    limited = capsys.readouterr()
    expected = f"NetworkPolicy {API_EGRESS_POLICY}: only 10.96.0.1/32 port 443, 192.168.7.20/32 port 6443"
    assert expected in limited.err

    def by_name(text: str) -> dict:
        return {(o["kind"], o["metadata"]["name"]): o for o in objects(text)}

    before, after = by_name(plain.out), by_name(limited.out)
    key = ("NetworkPolicy", API_EGRESS_POLICY)
    assert {k: v for k, v in before.items() if k != key} == {k: v for k, v in after.items() if k != key}
    assert after[key]["spec"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.96.0.1/32"}}], "ports": [{"protocol": "TCP", "port": 443}]},
        {"to": [{"ipBlock": {"cidr": "192.168.7.20/32"}}], "ports": [{"protocol": "TCP", "port": 6443}]},
    ]
    assert after[key]["spec"]["podSelector"] == before[key]["spec"]["podSelector"]
    done = api.apply(limited.out, "--dry-run=server", check=False)
    assert done.returncode == 0 and not warnings(done.stderr), done.stderr

    assert main(from_cluster) == 2
    refused = capsys.readouterr()
    assert refused.out == "" and "no API server address is listed behind it" in refused.err

    # what a control plane's reconciler keeps for the Service, written here by hand (a documentation address)
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes-by-hand",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "kubernetes"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["192.0.2.10"]}],
        "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
    }
    api.apply(dump([endpoint_slice]))
    try:
        assert main(from_cluster) == 0
        read = capsys.readouterr()
    finally:
        api.kubectl("delete", "endpointslice", "kubernetes-by-hand", "-n", "default")
    service_ip = api.kubectl(
        "get", "service", "kubernetes", "-n", "default", "-o", "jsonpath={.spec.clusterIP}"
    ).stdout
    assert f"only {service_ip}/32 port 443, 192.0.2.10/32 port 6443" in read.err
    assert [rule["to"][0]["ipBlock"]["cidr"] for rule in by_name(read.out)[key]["spec"]["egress"]] == [
        f"{service_ip}/32",
        "192.0.2.10/32",
    ]


@pytest.mark.parametrize(
    ("given", "cidr", "ports"),
    [
        ("10.96.0.1", "10.96.0.1/32", (443, 6443)),
        ("192.168.1.10:6443", "192.168.1.10/32", (6443,)),
        ("10.0.0.0/24", "10.0.0.0/24", (443, 6443)),
        ("[fd00::1]:443", "fd00::1/128", (443,)),
    ],
)
def test_an_api_server_address_given_by_hand(given, cidr, ports):
    from infrastructure.cluster.manifests import api_destination

    assert api_destination(given) == (cidr, ports)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("kubernetes.default", "not an IP address or network"),
        ("10.0.0.1:99999", "port '99999' is not a TCP port"),
        ("10.0.0.1:https", "port 'https' is not a TCP port"),
    ],
)
def test_an_unfit_api_server_address_is_named(tmp_path, capsys, given, message):
    root = filled_copy(tmp_path / "kubernetes")
    assert main(["manifests", "--overlay", "dev", "--root", str(root), "--api-server", given]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and f"--api-server {given!r}: {message}" in captured.err


def test_upstream_kfps_pods_reach_the_api_through_the_platforms_limited_policy(tmp_path):
    """The upstream KFP install's overrides, rendered by kustomize with its remote manifests replaced by a
    stand-in of their shape: every pod template gains the label `kubernetes-api-egress` selects (selectors
    untouched), and KFP's own policy no longer lets its pods reach any address on 443/6443."""
    import shutil
    import subprocess

    from infrastructure.cluster.manifests import KUBERNETES_DIR

    folder = tmp_path / "kubeflow-pipelines"
    shutil.copytree(KUBERNETES_DIR / "upstream" / "kubeflow-pipelines", folder)
    kustomization = (folder / "kustomization.yaml").read_text()
    (remote,) = re.findall(r"^\s*- (https://\S+)$", kustomization, flags=re.M)
    (folder / "kustomization.yaml").write_text(kustomization.replace(remote, "stand-in.yaml"))
    labels = {"app": "ml-pipeline", "application-crd-id": "kubeflow-pipelines"}
    stand_in = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "ml-pipeline", "labels": labels},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "api", "image": "ml-pipeline-api-server"}]},
                },
            },
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "workflow-controller-configmap"}},
    ]
    (folder / "stand-in.yaml").write_text(dump(stand_in))
    built = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=True)
    found = {(o["kind"], o["metadata"]["name"]): o for o in objects(built.stdout)}
    deployment = found[("Deployment", "ml-pipeline")]
    assert (
        deployment["spec"]["template"]["metadata"]["labels"]["lakehouse.io/kubernetes-api-client"] == "true"
    )
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    policy = found[("NetworkPolicy", "kubeflow-pipelines")]
    assert all(rule.get("to") for rule in policy["spec"]["egress"]), "no rule open to every address"
