"""The platform's services on a real node, as a user brings them up: `make images`, then the `node` overlay
(`lakehouse manifests --overlay node | kubectl apply --server-side -f -`), every pod Running and Ready or its
Job complete, a pipeline step's first moves against them (a table written through the REST catalog, read
back through Trino; MLflow answering), and a Kubeflow Pipelines run of pods."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from components.monitoring.performance import MODEL_PERFORMANCE
from infrastructure.cluster.manifests import (
    API_EGRESS_POLICY,
    api_server_destinations,
    limit_api_egress,
    objects,
    render,
)
from infrastructure.images.build import build_images, import_into_node
from infrastructure.node.node import kubectl, settled
from pipelines.cluster import RUN_AS_USER, SECRET_ENV
from pipelines.submit import NODE_NAME, RUN_ID_LABEL, step_of
from testing.manifests import dump, filled_copy
from testing.prerequisites import unavailable
from tests.node import browser
from tests.node.conftest import TIMINGS, RunningNode

NAMESPACE = "lakehouse"
#: The images the `node` overlay names, in the order they are built.
IMAGES = ("platform", "postgres", "redis", "minio", "minio-client", "rest-catalog", "trino")
IMAGES += ("mariadb", "metadata", "kfp-backend", "argo", "kserve-controller", "kfp-ui")
CHECK = Path(__file__).with_name("platform_check.py")
SCREENSHOTS = Path(__file__).with_name("screenshots")
RUN_ARTIFACTS = Path(__file__).with_name("run_artifacts.py")
READY_TIMEOUT = 600


@dataclass
class Platform:
    node: RunningNode
    objects: list[dict]


def _ns(node: RunningNode, *args: str, check: bool = True, timeout: float = 60):
    return kubectl(node.config, "-n", NAMESPACE, *args, check=check, timeout=timeout)


def _not_ready_report(node: RunningNode) -> str:
    """What a user would look at: the pods, and the events and logs of each that is not Ready."""
    lines = [kubectl(node.config, "get", "pods", "-A", "-o", "wide", check=False).stdout]
    for namespace in (NAMESPACE, "kserve"):
        listed = kubectl(node.config, "-n", namespace, "get", "pods", "-o", "json", check=False).stdout
        for pod in json.loads(listed or '{"items": []}')["items"]:
            name, phase = pod["metadata"]["name"], pod["status"].get("phase")
            ready = [c for c in pod["status"].get("conditions", []) if c["type"] == "Ready"]
            if phase == "Succeeded" or (ready and ready[0]["status"] == "True"):
                continue
            described = kubectl(node.config, "-n", namespace, "describe", "pod", name, check=False).stdout
            logs = kubectl(node.config, "-n", namespace, "logs", name, "--tail", "30", check=False).stdout
            lines += [f"--- {namespace}/{name} ({phase})", described[-1500:], "logs:", logs[-1500:]]
    return "\n".join(lines)


def _wait_for(node: RunningNode, what: str, check, timeout: float = READY_TIMEOUT) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what} not within {timeout:.0f} s:\n{_not_ready_report(node)}", pytrace=False)
        time.sleep(2)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def platform(node: RunningNode, tmp_path_factory: pytest.TempPathFactory) -> Platform:
    """The `node` overlay applied with its images imported, and everything in it settled."""
    started = time.monotonic()
    built = build_images(list(IMAGES), log=lambda line: None)
    TIMINGS["platform: images built or found"] = time.monotonic() - started
    started = time.monotonic()
    import_into_node(built, node.config, log=lambda line: None)
    TIMINGS["platform: images imported"] = time.monotonic() - started
    rendered = render("node", filled_copy(tmp_path_factory.mktemp("manifests") / "kubernetes"))
    # as `lakehouse manifests --api-server from-cluster` does: the API egress limited to this node's server
    found = limit_api_egress(objects(rendered), api_server_destinations(str(node.config.kubeconfig)))
    started = time.monotonic()
    kubectl(node.config, "apply", "--server-side", "-f", "-", input=dump(found), timeout=120)
    workloads = [o for o in found if o["kind"] in ("Job", "Deployment", "StatefulSet")]
    _wait_for(
        node,
        "every Job complete and every Deployment and StatefulSet ready",
        lambda: settled(node.config, workloads, NAMESPACE),
    )
    TIMINGS["platform: applied until every workload is ready"] = time.monotonic() - started
    return Platform(node, found)


def test_every_pod_runs_ready_or_has_completed(platform: Platform) -> None:
    pods = json.loads(_ns(platform.node, "get", "pods", "-o", "json").stdout)["items"]
    states = {}
    for pod in pods:
        ready = [c["status"] for c in pod["status"].get("conditions", []) if c["type"] == "Ready"]
        states[pod["metadata"]["name"]] = (pod["status"]["phase"], ready == ["True"])
    wrong = {
        name: state
        for name, state in states.items()
        if state not in (("Running", True), ("Succeeded", False))
    }
    assert not wrong, (
        f"pods neither Running and Ready nor Succeeded: {wrong}\n{_not_ready_report(platform.node)}"
    )
    apps = {pod["metadata"]["labels"].get("app.kubernetes.io/name") for pod in pods}
    assert apps >= {"minio", "postgres", "polaris", "trino", "mlflow", "redis", "feast-feature-server"}
    assert apps >= {"mysql", "metadata", "ml-pipeline", "ml-pipeline-persistenceagent", "workflow-controller"}
    # every claim bound to a volume of the node's pool
    claims = json.loads(_ns(platform.node, "get", "pvc", "-o", "json").stdout)["items"]
    assert claims and {claim["status"]["phase"] for claim in claims} == {"Bound"}


def test_the_api_egress_policy_names_this_nodes_api_server_only(platform: Platform) -> None:
    """Read from the node's `kubernetes` Service and EndpointSlice: its cluster IP on 443 and the API server
    on the node's address and port (this node's CNI does not enforce the policy; the addresses are right)."""
    policy = json.loads(_ns(platform.node, "get", "networkpolicy", API_EGRESS_POLICY, "-o", "json").stdout)
    config = platform.node.config
    assert policy["spec"]["egress"] == [
        {
            "to": [{"ipBlock": {"cidr": f"{config.api_service_ip}/32"}}],
            "ports": [{"protocol": "TCP", "port": 443}],
        },
        {
            "to": [{"ipBlock": {"cidr": f"{config.node_ip}/32"}}],
            "ports": [{"protocol": "TCP", "port": config.ports["apiserver"]}],
        },
    ]


def test_the_namespace_enforces_pod_security_restricted(platform: Platform) -> None:
    labels = json.loads(kubectl(platform.node.config, "get", "namespace", NAMESPACE, "-o", "json").stdout)
    assert labels["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    privileged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged", "namespace": NAMESPACE},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "localhost/redis:7.0-bookworm",
                    "securityContext": {"privileged": True},
                }
            ]
        },
    }
    refused = kubectl(platform.node.config, "apply", "-f", "-", input=yaml.safe_dump(privileged), check=False)
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr, refused.stderr


def _client_pod(platform: Platform, name: str, command: list[str], check_volume: bool = True) -> dict:
    """A pod of the platform image as the pipeline's steps run: their Secrets as environment, the `cluster`
    profile, user 10001 on a read-only root, the step's labels (the network policies select them); with
    `check_volume`, ConfigMap `platform-check` mounted at /check."""
    env = [{"name": "LAKEHOUSE_PROFILE", "value": "cluster"}, {"name": "HOME", "value": "/tmp"}]
    env += [{"name": "LAKEHOUSE_HOME", "value": "/tmp/lakehouse"}]
    for secret, keys in SECRET_ENV.items():
        for key, variable in keys.items():
            env.append({"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    image = next(
        o for o in platform.objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "mlflow"
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"lakehouse.io/pipeline-step": "true", "app.kubernetes.io/part-of": "lakehouse"},
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUN_AS_USER,
                "runAsGroup": RUN_AS_USER,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "check",
                    "image": image["spec"]["template"]["spec"]["containers"][0]["image"],
                    "imagePullPolicy": "IfNotPresent",
                    "command": command,
                    "env": env,
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "256Mi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    },
                    "volumeMounts": [
                        {"name": "tmp", "mountPath": "/tmp"},
                        *(
                            [{"name": "check", "mountPath": "/check", "readOnly": True}]
                            if check_volume
                            else []
                        ),
                    ],
                }
            ],
            "volumes": [
                {"name": "tmp", "emptyDir": {}},
                *([{"name": "check", "configMap": {"name": "platform-check"}}] if check_volume else []),
            ],
        },
    }


def _finished(platform: Platform, pod: dict, timeout: float = 300) -> tuple[bool, str]:
    """Start `pod` (from `_client_pod`) and wait until it has ended: (whether it succeeded, its logs)."""
    node, name = platform.node, pod["metadata"]["name"]
    kubectl(node.config, "apply", "-f", "-", input=yaml.safe_dump(pod))
    phase = ["-o", "jsonpath={.status.phase}"]
    _wait_for(
        node,
        f"pod {name} finishing",
        lambda: _ns(node, "get", "pod", name, *phase, check=False).stdout in ("Succeeded", "Failed"),
        timeout=timeout,
    )
    return _ns(node, "get", "pod", name, *phase).stdout == "Succeeded", _ns(node, "logs", name).stdout


def test_a_step_writes_through_the_catalog_and_trino_reads_it(platform: Platform) -> None:
    node = platform.node
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "platform-check", "namespace": NAMESPACE},
        "data": {"platform_check.py": CHECK.read_text()},
    }
    kubectl(node.config, "apply", "-f", "-", input=yaml.safe_dump(config_map))
    pod = _client_pod(platform, "platform-check", ["python", "/check/platform_check.py"])
    started = time.monotonic()
    succeeded, logs = _finished(platform, pod)
    TIMINGS["platform: a step's write through the catalog, read by Trino"] = time.monotonic() - started
    assert succeeded, logs[-3000:]
    result = json.loads(logs.strip().splitlines()[-1])
    assert (result["rows"], result["sum"]) == (3, 6)
    assert result["snapshot"] > 0 and result["mlflow_experiments"] >= 1


def _service_url(node: RunningNode, service: str, port: int) -> str:
    """The Service's cluster address, reachable from this host (its range is routed to the node's bridge)."""
    ip = _ns(node, "get", "service", service, "-o", "jsonpath={.spec.clusterIP}").stdout.strip()
    return f"http://{ip}:{port}"


#: Every step of the churn pipeline, by its task name in the compiled pipeline.
STEPS = {"ingest", "transform", "features", "train", "evaluate-and-promote", "deploy", "score", "monitor"}
STEPS |= {"report"}
RUN_TIMEOUT = 2400


#: The `lakehouse` command of this environment, as the guide runs it.
LAKEHOUSE = str(Path(sys.executable).with_name("lakehouse"))


def _lakehouse(*args: str, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, **(env or {})}
    return subprocess.run(
        [LAKEHOUSE, *args], capture_output=True, text=True, timeout=timeout, check=False, env=environ
    )


def _step_pods(
    node: RunningNode, selector: str = "workflows.argoproj.io/workflow", phase: str | None = None
) -> dict[str, dict]:
    """The executor pods (those that run the platform image's code) of the workflows `selector` picks, in
    `phase` if given, by the pipeline step they run."""
    listed = _ns(node, "get", "pods", "-l", selector, "-o", "json").stdout
    pods = {}
    for pod in json.loads(listed)["items"]:
        step = step_of(pod["metadata"]["annotations"].get(NODE_NAME, ""))
        if step and phase in (None, pod["status"].get("phase")):
            pods[step] = pod
    return pods


def _executor_pods(node: RunningNode, run_id: str) -> dict[str, str]:
    """Each step's executor pod in run `run_id`: task name -> phase."""
    listed = _ns(node, "get", "workflows", "-o", "json").stdout
    workflows = [w["metadata"] for w in json.loads(listed)["items"]]
    (workflow,) = [w["name"] for w in workflows if w.get("labels", {}).get(RUN_ID_LABEL) == run_id]
    pods = _step_pods(node, f"workflows.argoproj.io/workflow={workflow}")
    return {step: pod["status"]["phase"] for step, pod in pods.items()}


def _secret_value(node: RunningNode, secret: str, key: str) -> str:
    encoded = _ns(node, "get", "secret", secret, "-o", f"jsonpath={{.data.{key}}}").stdout
    return base64.b64decode(encoded).decode()


@pytest.fixture(scope="module")
def uploaded_exports(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The exports put where the `cluster` profile's ingest step reads them, as the guide says: generated on
    this host and `lakehouse data upload --profile cluster` to the object store (its Service reached from the
    host, the platform's key pair from its Secret); the platform image holds none."""
    node = platform.node
    data = tmp_path_factory.mktemp("exports")
    generated = _lakehouse("data", "generate", "--out", str(data), "--no-dvc", timeout=300)
    assert generated.returncode == 0, generated.stderr
    env = {
        "LAKEHOUSE_DATA_DIR": str(data),
        "LAKEHOUSE_HOME": str(tmp_path_factory.mktemp("upload-home")),
        "LAKEHOUSE_S3_ENDPOINT": _service_url(node, "minio", 9000),
        **{
            key: _secret_value(node, "lakehouse-credentials", key)
            for key in SECRET_ENV["lakehouse-credentials"]
        },
    }
    uploaded = _lakehouse("data", "upload", "--profile", "cluster", timeout=300, env=env)
    assert uploaded.returncode == 0, uploaded.stderr
    return uploaded.stdout.split()


@pytest.fixture(scope="module")
def churn_package(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pipeline compiled as the guide says: `lakehouse compile --profile cluster`."""
    package = tmp_path_factory.mktemp("churn") / "churn_training.yaml"
    compiled = _lakehouse("compile", "--profile", "cluster", "--output", str(package), timeout=300)
    assert compiled.returncode == 0, compiled.stderr
    return package


def _submit(node: RunningNode, package: Path, wait: float) -> list[str]:
    """The arguments of `lakehouse submit --wait` against the node's KFP API server."""
    host = _service_url(node, "ml-pipeline", 8888)
    return [
        "submit",
        "--host",
        host,
        "--package",
        str(package),
        "--experiment",
        "node-check",
        "--wait",
        str(wait),
    ]


def _trino(node: RunningNode):
    """A cursor on the node's Trino (catalog `lakehouse`), reached through its Service from this host."""
    import trino

    host = _service_url(node, "trino", 8080).removeprefix("http://").split(":")[0]
    return trino.dbapi.connect(host=host, port=8080, user="node-check", catalog="lakehouse").cursor()


def _tables(node: RunningNode) -> dict[str, int]:
    """Every table of the layers (dbt's scratch included), read through Trino: name -> row count."""
    cursor = _trino(node)
    cursor.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        "WHERE table_schema IN ('bronze', 'silver', 'gold') AND table_type = 'BASE TABLE'"
    )
    counts = {}
    for (name,) in cursor.fetchall():
        cursor.execute(f"SELECT count(*) FROM {name}")
        counts[name] = cursor.fetchone()[0]
    return counts


def _scratch(tables) -> list[str]:
    """The scratch tables of a dbt build among `tables` (a unit test's or an incremental model's)."""
    return sorted(name for name in tables if name.endswith("__dbt_tmp"))


#: The step whose pod the fault test deletes: as soon as dbt has a scratch table (mid unit test or mid
#: incremental merge), the moment that leaves the most behind, else after the longest wait.
INTERRUPTED_STEP, SCRATCH_WAIT = "transform", 180.0


@dataclass
class InterruptedRun:
    """The churn pipeline submitted with `--wait`, and its transform step's pod deleted mid-build."""

    submitted: subprocess.CompletedProcess
    pod: str
    scratch: list[str]
    tables: dict[str, int]
    #: what `lakehouse submit --wait` alerted (LAKEHOUSE_ALERT_FILE)
    alerts: list[dict]


@pytest.fixture(scope="module")
def interrupted_run(platform: Platform, churn_package: Path, uploaded_exports: list[str]) -> InterruptedRun:
    """`lakehouse submit --wait`, and the transform step's pod deleted while dbt's build has a scratch table
    (a node drained, an eviction, someone's `kubectl delete`); then every table of the layers read through
    Trino."""
    node = platform.node
    started = time.monotonic()
    alert_file = node.config.home / "alerts.jsonl"
    alert_file.unlink(missing_ok=True)
    env = {**os.environ, "KUBECONFIG": str(node.config.kubeconfig), "LAKEHOUSE_ALERT_FILE": str(alert_file)}
    command = [LAKEHOUSE, *_submit(node, churn_package, RUN_TIMEOUT)]
    waiting = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    pod, scratch = "", []
    while not pod and waiting.poll() is None and time.monotonic() - started < RUN_TIMEOUT:
        pod = _running_executor(node, INTERRUPTED_STEP)
        time.sleep(1)
    if pod:
        cursor, deadline = _trino(node), time.monotonic() + SCRATCH_WAIT
        while not scratch and waiting.poll() is None and time.monotonic() < deadline:
            cursor.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables")
            scratch = _scratch(row[0] for row in cursor.fetchall())
            time.sleep(0.2)
        _ns(node, "delete", "pod", pod, "--wait=false")
    stdout, stderr = waiting.communicate(timeout=RUN_TIMEOUT + 120)
    TIMINGS["platform: a run with a step's pod deleted, submit to the error"] = time.monotonic() - started
    submitted = subprocess.CompletedProcess(waiting.args, waiting.returncode, stdout, stderr)
    alerts = [json.loads(line) for line in alert_file.read_text().splitlines()] if alert_file.exists() else []
    return InterruptedRun(submitted, pod, scratch, _tables(node), alerts)


def _running_executor(node: RunningNode, step: str) -> str:
    """The name of `step`'s executor pod once its container runs, else ''."""
    pod = _step_pods(node, phase="Running").get(step)
    return pod["metadata"]["name"] if pod else ""


def _run_id(submitted: subprocess.CompletedProcess) -> str:
    """The run id `lakehouse submit` printed first (`run <id> of pipeline version ...`), else ''."""
    return submitted.stdout.split()[1] if submitted.stdout.startswith("run ") else ""


@dataclass
class ChurnRun:
    """The churn pipeline submitted again as the guide says, after the interrupted run, and waited for."""

    submitted: subprocess.CompletedProcess
    run_id: str
    steps: dict[str, str]


@pytest.fixture(scope="module")
def churn_run(platform: Platform, churn_package: Path, interrupted_run: InterruptedRun) -> ChurnRun:
    """`lakehouse submit --wait` against the KFP API server, after the interrupted run."""
    node = platform.node
    started = time.monotonic()
    submitted = _lakehouse(*_submit(node, churn_package, RUN_TIMEOUT), timeout=RUN_TIMEOUT + 120)
    TIMINGS["platform: the churn pipeline as a KFP run, submit to SUCCEEDED"] = time.monotonic() - started
    run_id = _run_id(submitted)
    return ChurnRun(submitted, run_id, _executor_pods(node, run_id) if run_id else {})


def test_the_churn_pipeline_runs_as_pods_and_its_champion_answers_through_kserve(
    platform: Platform, churn_run: ChurnRun, uploaded_exports: list[str]
) -> None:
    """The guide's cluster steps: `lakehouse compile --profile cluster`, `lakehouse submit --wait` against
    the KFP API server; every step runs as pods of the platform image under Pod Security `restricted`;
    the deploy step's InferenceService is made Ready by the KServe controller; `lakehouse predict --url`
    answers through its Service with probabilities and the model version; `lakehouse deploy` by hand."""
    node, submitted, steps = platform.node, churn_run.submitted, churn_run.steps
    assert submitted.returncode == 0, (
        f"{submitted.stdout}\n{submitted.stderr}\nsteps: {steps}\n{_not_ready_report(node)}"
    )
    # the ingest step read the exports from the object store (the image holds none)
    tables = ("customers", "products", "stores", "orders", "order_items")
    assert [f"s3://lakehouse/sources/{table}.csv" for table in tables] == uploaded_exports[: len(tables)]
    assert steps.keys() >= STEPS and set(steps.values()) == {"Succeeded"}, steps

    isvc = json.loads(_ns(node, "get", "inferenceservice", "churn", "-o", "json").stdout)
    ready = [c["status"] for c in isvc["status"].get("conditions", []) if c["type"] == "Ready"]
    assert ready == ["True"], isvc["status"]
    version = isvc["metadata"]["annotations"]["lakehouse.io/model-version"]
    url = _service_url(node, "churn-predictor", 80)
    answered = _lakehouse("predict", "--profile", "cluster", "--url", url, "1", "2", "3", timeout=120)
    assert answered.returncode == 0, answered.stdout + answered.stderr
    answer = json.loads(answered.stdout)
    probabilities = [p["churn_probability"] for p in answer["predictions"]]
    assert len(probabilities) == 3 and all(0 <= p <= 1 for p in probabilities), answer
    assert str(answer["model_version"]) == version, answer

    # `lakehouse deploy` by hand, from this host with the node's kubeconfig: the same version is kept Ready
    by_hand = _lakehouse(
        "deploy",
        "--profile",
        "cluster",
        "--model-version",
        version,
        "--timeout",
        "300",
        timeout=360,
        env={"KUBECONFIG": str(node.config.kubeconfig)},
    )
    assert by_hand.returncode == 0, by_hand.stdout + by_hand.stderr
    assert f"model version {version}" in by_hand.stdout, by_hand.stdout


def test_a_step_pod_deleted_mid_run_fails_the_run_naming_the_step_and_a_resubmit_completes(
    platform: Platform, interrupted_run: InterruptedRun, churn_run: ChurnRun
) -> None:
    """The transform step's pod deleted while dbt builds (with a scratch table of a unit test or a merge in
    the catalog): `lakehouse submit --wait` ends FAILED and names the step with Argo's reason, no later step
    starts, every table of the layers stays readable (Iceberg commits whole snapshots), and the same
    pipeline submitted again drops the scratch and succeeds without ingesting anything twice."""
    submitted = interrupted_run.submitted
    assert interrupted_run.pod, f"the transform step never ran:\n{submitted.stdout}\n{submitted.stderr}"
    assert submitted.returncode == 1, f"{submitted.stdout}\n{submitted.stderr}"
    assert "ended FAILED" in submitted.stdout, submitted.stdout
    assert f"step {INTERRUPTED_STEP!r} failed" in submitted.stderr, submitted.stderr
    started = _executor_pods(platform.node, _run_id(submitted))
    assert started.keys() <= {"ingest", INTERRUPTED_STEP}, f"steps after {INTERRUPTED_STEP} ran: {started}"
    tables = interrupted_run.tables
    assert any(name.startswith("bronze.") for name in tables), tables
    assert interrupted_run.scratch, "the pod was deleted when dbt had no scratch table: the test proved less"

    assert churn_run.submitted.returncode == 0, churn_run.submitted.stderr
    again = _tables(platform.node)
    assert _scratch(again) == [], "the scratch tables of the stopped build are still there"
    kept = set(tables) - set(_scratch(tables))
    bronze = {name: rows for name, rows in tables.items() if name.startswith("bronze.") and name in kept}
    assert {name: again[name] for name in bronze} == bronze, "the second ingest of the same files added rows"
    # every gold table holds rows, but the quality of past predictions: none has its label window closed yet
    built = {
        name: rows for name, rows in again.items() if name.startswith("gold.") and name != MODEL_PERFORMANCE
    }
    assert all(rows > 0 for rows in built.values()), again
    alerts = interrupted_run.alerts
    assert [alert["kind"] for alert in alerts] == ["run_failed"], alerts
    assert (
        _run_id(submitted) in alerts[0]["summary"]
        and INTERRUPTED_STEP in alerts[0]["details"]["failed_steps"][0]
    )


#: Run by a pod given each client's key pair (`PROBE_<n>_ID`, `PROBE_<n>_SECRET` for the n-th Secret of
#: `PROBE_SECRETS`): for each, the S3 calls it makes and what MinIO answered.
S3_PROBE = """
import json, os
from pyarrow import fs
def attempt(call):
    try:
        call()
        return "allowed"
    except OSError as exc:
        return "denied" if "ACCESS_DENIED" in str(exc).upper().replace(" ", "_") else str(exc)[:300]
def probe(s3):
    def write(path):
        with s3.open_output_stream(path) as out:
            out.write(b"probe")
    def read(path):
        with s3.open_input_stream(path) as stream:
            stream.read()
    name = "written-by-a-key-probe"
    return {
        "read feast/": attempt(lambda: read("lakehouse/feast/registry.db")),
        "write feast/": attempt(lambda: write(f"lakehouse/feast/{name}")),
        "write prediction-log/": attempt(lambda: write(f"lakehouse/prediction-log/probe/{name}")),
        "write warehouse/": attempt(lambda: write(f"lakehouse/warehouse/{name}")),
        "delete warehouse/": attempt(lambda: s3.delete_file(f"lakehouse/warehouse/{name}")),
        "write mlflow/": attempt(lambda: write(f"lakehouse/mlflow/{name}")),
        "read sources/": attempt(lambda: read("lakehouse/sources/customers.csv")),
        "list the bucket": attempt(lambda: s3.get_file_info(fs.FileSelector("lakehouse", recursive=False))),
    }
found = {}
for n, secret in enumerate(os.environ["PROBE_SECRETS"].split()):
    s3 = fs.S3FileSystem(endpoint_override="minio:9000", scheme="http", region="us-east-1",
        access_key=os.environ[f"PROBE_{n}_ID"], secret_key=os.environ[f"PROBE_{n}_SECRET"])
    found[secret] = probe(s3)
print(json.dumps(found))
"""
DENIED = dict.fromkeys(
    ("read feast/", "write feast/", "write prediction-log/", "write warehouse/", "delete warehouse/"),
    "denied",
)
DENIED |= {"write mlflow/": "denied", "read sources/": "denied"}
#: Each client's key pair (its Secret) -> what MinIO lets it do beyond listing the bucket's object names,
#: which every client may (Feast's HeadBucket and the table clients' listings need it on MinIO).
KEY_RIGHTS = {
    "model-server-credentials": {"read feast/": "allowed", "write prediction-log/": "allowed"},
    # Feast creates an empty registry when it starts before the first run has written one
    "feast-server-credentials": {"read feast/": "allowed", "write feast/": "allowed"},
    "trino-credentials": {"write warehouse/": "allowed", "delete warehouse/": "allowed"},
    "polaris-credentials": {"write warehouse/": "allowed", "delete warehouse/": "allowed"},
    "mlflow-credentials": {"write mlflow/": "allowed"},
    "lakehouse-credentials": dict.fromkeys(DENIED, "allowed"),  # the steps': the whole bucket
}


def test_each_clients_key_reads_and_writes_only_what_it_uses(platform: Platform, churn_run: ChurnRun) -> None:
    """MinIO itself enforces each client's user (its Secret's key pair, made by `object-store-setup`): the
    model server reads Feast's registry and writes prediction log segments, Feast's server its registry,
    Trino and Polaris read, write and delete the tables' files, MLflow its artifacts; anything else is
    refused. The steps' pair reaches the whole bucket."""
    assert churn_run.submitted.returncode == 0, "the run made Feast's registry and uploaded the exports"
    pod = _client_pod(platform, "key-probe", ["python", "-c", S3_PROBE], check_volume=False)
    env = [e for e in pod["spec"]["containers"][0]["env"] if not e["name"].startswith("AWS_")]
    env.append({"name": "PROBE_SECRETS", "value": " ".join(KEY_RIGHTS)})
    for n, secret in enumerate(KEY_RIGHTS):
        for variable, key in (
            (f"PROBE_{n}_ID", "AWS_ACCESS_KEY_ID"),
            (f"PROBE_{n}_SECRET", "AWS_SECRET_ACCESS_KEY"),
        ):
            env.append({"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    pod["spec"]["containers"][0]["env"] = env
    succeeded, logs = _finished(platform, pod)
    assert succeeded, logs[-3000:]
    found = json.loads(logs.strip().splitlines()[-1])
    assert found == {
        secret: {**DENIED, **rights, "list the bucket": "allowed"} for secret, rights in KEY_RIGHTS.items()
    }


def test_a_deleted_predictor_pod_is_replaced_and_the_service_answers_again(
    platform: Platform, churn_run: ChurnRun
) -> None:
    """The predictor's pod deleted (a node drained, a crash): its Deployment starts another, which loads the
    champion again, and the same Service address answers, with nothing done by hand."""
    import httpx

    assert churn_run.submitted.returncode == 0, "the churn run did not succeed"
    node = platform.node
    url = _service_url(node, "churn-predictor", 80) + "/v1/models/churn:predict"
    body = {"instances": [{"customer_id": 1}]}
    assert httpx.post(url, json=body, timeout=30).status_code == 200
    selector = ["-l", "serving.kserve.io/inferenceservice=churn"]
    old = _ns(node, "get", "pod", *selector, "-o", "jsonpath={.items[0].metadata.name}").stdout
    started = time.monotonic()
    _ns(node, "delete", "pod", old, "--wait=false")
    answered = None
    while time.monotonic() - started < 300:
        if _ns(node, "get", "pod", old, "--ignore-not-found", "-o", "name").stdout.strip():
            time.sleep(0.5)  # still terminating: whatever answers now is the old process
            continue
        try:
            answered = httpx.post(url, json=body, timeout=5)
            if answered.status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    TIMINGS["platform: predictor pod deleted until the Service answers again"] = time.monotonic() - started
    assert answered is not None and answered.status_code == 200, _not_ready_report(node)
    assert answered.json()["predictions"][0]["customer_id"] == 1


def test_the_predictors_answers_reach_bronze_prediction_log(platform: Platform, churn_run: ChurnRun) -> None:
    """After the predictor pod above was deleted (SIGTERM: its log segment sealed into the object store from
    its emptyDir spool), `lakehouse predictions load` in a pod as the steps run loads its answers into
    `bronze.prediction_log`, which Trino reads: the customers asked, the version served."""
    assert churn_run.submitted.returncode == 0, "the churn run did not succeed"
    node = platform.node
    version = _ns(
        node,
        "get",
        "inferenceservice",
        "churn",
        "-o",
        "jsonpath={.metadata.annotations.lakehouse\\.io/model-version}",
    ).stdout.strip()
    pod = _client_pod(
        platform,
        "prediction-log-load",
        ["python", "-m", "pipelines.cli", "predictions", "load", "--profile", "cluster"],
        check_volume=False,
    )
    succeeded, logs = _finished(platform, pod)
    assert succeeded, logs[-3000:]
    cursor = _trino(node)
    cursor.execute("SELECT customer_id, model_version, role FROM bronze.prediction_log")
    logged = cursor.fetchall()
    assert {customer for customer, _, _ in logged} >= {1, 2, 3}, (logs[-2000:], logged)
    assert {(served, role) for _, served, role in logged} == {(version, "champion")}, logged


#: Every minute, at second 0 (KFP reads six fields, seconds first).
EVERY_MINUTE = "0 * * * * *"


def _scheduled_run(node: RunningNode, host: str, recurring_id: str, timeout: float) -> tuple[str, str]:
    """The KFP run id and the name of the first workflow the ScheduledWorkflow controller started for
    `recurring_id`, once the API knows the run: the controller labels the workflow with the run's id before
    the persistence agent reports it, and until then the API answers 404 for that id."""
    import kfp

    from pipelines.submit import quiet_client

    deadline = time.monotonic() + timeout
    found: tuple[str, str] | None = None
    while time.monotonic() < deadline:
        if found is None:
            listed = json.loads(_ns(node, "get", "workflows", "-o", "json").stdout)["items"]
            for workflow in listed:
                owners = workflow["metadata"].get("ownerReferences", [])
                labels = workflow["metadata"].get("labels", {})
                if any(owner["kind"] == "ScheduledWorkflow" for owner in owners) and RUN_ID_LABEL in labels:
                    swf = _ns(node, "get", "scheduledworkflow", owners[0]["name"], "-o", "json").stdout
                    if recurring_id in swf:
                        found = labels[RUN_ID_LABEL], workflow["metadata"]["name"]
        if found is not None:
            with quiet_client(host, None) as client:
                try:
                    client.get_run(found[0])
                    return found
                except kfp.client.client.kfp_server_api.ApiException as exc:
                    if exc.status != 404:
                        raise
        time.sleep(2)
    started = f"its workflow {found[1]} was never reported to the API" if found else "no workflow started"
    raise AssertionError(f"recurring run {recurring_id}: {started} within {timeout:.0f} s")


def test_a_recurring_monitoring_run_fires_on_its_schedule_and_its_check_succeeds(
    platform: Platform, churn_run: ChurnRun
) -> None:
    """`lakehouse monitor --profile cluster --schedule CRON --host URL`, as the guide says: KFP's
    ScheduledWorkflow controller starts the monitoring pipeline's run when the minute comes round, its one
    step (the platform image, as a step runs) loads the prediction log, checks drift and quality against the
    served champion and decides on retraining; the run SUCCEEDS. The recurring run is deleted afterwards."""
    from pipelines.submit import quiet_client, wait_for_run

    assert churn_run.submitted.returncode == 0, "the churn run did not succeed"
    node = platform.node
    host = _service_url(node, "ml-pipeline", 8888)
    started = time.monotonic()
    env = {"KUBECONFIG": str(node.config.kubeconfig)}
    command = ("monitor", "--profile", "cluster", "--host", host, "--schedule", EVERY_MINUTE)
    scheduled = _lakehouse(*command, timeout=300, env=env)
    assert scheduled.returncode == 0, scheduled.stderr
    recurring_id = scheduled.stdout.split()[2]
    try:
        run_id, workflow = _scheduled_run(node, host, recurring_id, timeout=240)
        state = wait_for_run(host, run_id, timeout=900)
        TIMINGS["platform: a recurring monitoring run, schedule to SUCCEEDED"] = time.monotonic() - started
        pods = _step_pods(node, f"workflows.argoproj.io/workflow={workflow}")
        step_logs = {
            step: _ns(node, "logs", pod["metadata"]["name"], "-c", "main", check=False).stdout
            for step, pod in pods.items()
        }
    finally:  # its workflows and their pods go with it
        with quiet_client(host, None) as client:
            client.delete_recurring_run(recurring_id)
    assert set(step_logs) == {"check-and-retrain"}, pods
    logs = step_logs["check-and-retrain"]
    assert state == "SUCCEEDED", logs[-3000:]
    decided = [line for line in logs.splitlines() if "retraining" in line]
    assert decided, f"the check printed no decision:\n{logs[-3000:]}"
    if decided[-1].startswith("retraining: "):  # drift or a quality drop: it submitted a churn-training run
        retraining = decided[-1].rsplit("/", 1)[-1]
        with quiet_client(host, None) as client:
            assert client.get_run(retraining).pipeline_version_reference, decided[-1]
            client.terminate_run(retraining)  # proven started; the rest of the tier needs the node's CPU


def test_a_run_whose_image_cannot_be_pulled_is_stopped_naming_the_step_and_the_image(
    platform: Platform, churn_run: ChurnRun, tmp_path: Path
) -> None:
    """The pipeline compiled for an image the node does not have: `lakehouse submit --wait` stops at the
    first step whose pod cannot start, names the step and the image, and terminates the run; the champion's
    InferenceService is left as it was."""
    assert churn_run.submitted.returncode == 0, "the churn run did not succeed"
    node = platform.node
    before = json.loads(_ns(node, "get", "inferenceservice", "churn", "-o", "json").stdout)["metadata"]
    package = tmp_path / "missing-image.yaml"
    missing = "localhost/lakehouse-missing:0"
    compiled = _lakehouse(
        "compile",
        "--profile",
        "cluster",
        "--output",
        str(package),
        timeout=300,
        env={"LAKEHOUSE_IMAGE": missing},
    )
    assert compiled.returncode == 0, compiled.stderr
    started = time.monotonic()
    env = {"KUBECONFIG": str(node.config.kubeconfig)}
    submitted = _lakehouse(*_submit(node, package, 600), timeout=720, env=env)
    TIMINGS["platform: a missing step image named, submit to the error"] = time.monotonic() - started
    assert submitted.returncode != 0, submitted.stdout
    assert "step 'ingest' cannot start" in submitted.stderr and missing in submitted.stderr, submitted.stderr
    assert "terminated" in submitted.stderr, submitted.stderr
    after = json.loads(_ns(node, "get", "inferenceservice", "churn", "-o", "json").stdout)["metadata"]
    assert after["generation"] == before["generation"]


def test_the_kfp_ui_shows_the_run_and_its_steps_in_a_browser(platform: Platform, churn_run: ChurnRun) -> None:
    """KFP 2.0.5's UI, built here and served in the cluster, opened in headless Chromium: the run page shows
    the run's graph, its steps by their display names and the artifacts between them. The screenshot stays
    beside this module (`tests/node/screenshots/`)."""
    try:
        browser.chromium()
    except browser.BrowserUnavailable as exc:
        unavailable(str(exc), "the browser")
    assert churn_run.run_id, churn_run.submitted.stdout
    ui = _service_url(platform.node, "ml-pipeline-ui", 80)
    run_page = f"{ui}/#/runs/details/{churn_run.run_id}"
    page = browser.rendered_text(run_page)
    for shown in ("ingest to bronze", "dbt build silver and gold", "train and register", "deploy champion"):
        assert shown in page, f"{shown!r} not on the run page {run_page}:\n{page[-3000:]}"
    for artifact in ("training_set", "metrics", "run_report"):
        assert artifact in page, f"artifact {artifact!r} not on the run page {run_page}"
    browser.screenshot(run_page, SCREENSHOTS / "run.png")


def test_the_kfp_ui_shows_a_metric_of_the_run_read_from_ml_metadata(
    platform: Platform, churn_run: ChurnRun
) -> None:
    """The training step's `metrics` artifact, looked up in ML Metadata by the run's context, opened on the
    UI's artifact page (which reads it over gRPC-Web): its ROC AUC is shown. Screenshot beside the run's."""
    from infrastructure.metadata.environment import server_environment

    try:
        browser.chromium()
    except browser.BrowserUnavailable as exc:
        unavailable(str(exc), "the browser")
    assert churn_run.run_id, churn_run.submitted.stdout
    python = server_environment(log=lambda line: None)
    grpc = _service_url(platform.node, "metadata-grpc-service", 8080).removeprefix("http://")
    host, port = grpc.rsplit(":", 1)
    listed = subprocess.run(
        [str(python), str(RUN_ARTIFACTS), host, port, churn_run.run_id],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    artifacts = json.loads(listed.stdout)
    metrics = [a for a in artifacts if a["type"] == "system.Metrics" and "roc_auc" in a["properties"]]
    assert metrics, artifacts
    page_url = f"{_service_url(platform.node, 'ml-pipeline-ui', 80)}/#/artifacts/{metrics[0]['id']}"
    page = browser.rendered_text(page_url)
    assert "roc_auc" in page, f"no roc_auc on {page_url}:\n{page[-3000:]}"
    browser.screenshot(page_url, SCREENSHOTS / "metrics.png")
