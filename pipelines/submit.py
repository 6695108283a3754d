"""Submit the compiled pipeline to a Kubeflow Pipelines API server: upload (or a new version), then a run or
a recurring run in an experiment, under the ServiceAccount `pipeline-runner`."""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.core.kubernetes import NAMESPACE

PIPELINE_NAME = "churn-training"
DEFAULT_EXPERIMENT = "churn-training"
TOKEN_ENV = "LAKEHOUSE_KFP_TOKEN"
PORT_FORWARD = "kubectl -n lakehouse port-forward svc/ml-pipeline-ui 8080:80"


class SubmitError(RuntimeError):
    """The submission cannot go through; the one-line message says what to run."""


@dataclass(frozen=True)
class Submitted:
    """What was created on the server and where to see it in the KFP UI."""

    pipeline_id: str
    version_id: str
    experiment_id: str
    run_id: str
    url: str
    recurring: bool


def bearer_token(kubeconfig: str | None = None) -> str | None:
    """$LAKEHOUSE_KFP_TOKEN, else the token of the kubeconfig's current user, else None."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    path = Path(
        kubeconfig or os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0]
    ).expanduser()
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    context = next(
        (c["context"] for c in config.get("contexts", []) if c["name"] == config.get("current-context")), {}
    )
    user = next((u.get("user", {}) for u in config.get("users", []) if u["name"] == context.get("user")), {})
    return user.get("token")


def check_server(host: str, token: str | None) -> None:
    """Fail fast, in one line, when the KFP API cannot be reached or refuses the token."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        answer = httpx.get(f"{host.rstrip('/')}/apis/v2beta1/healthz", headers=headers, timeout=15)
    except httpx.HTTPError as exc:
        raise SubmitError(
            f"cannot reach the KFP API at {host} ({exc}): start `{PORT_FORWARD}` or fix --host"
        ) from None
    if answer.status_code in (401, 403):
        raise SubmitError(
            f"the KFP API at {host} refused the token ({answer.status_code}; expired?): set {TOKEN_ENV} to a "
            "fresh one: `export LAKEHOUSE_KFP_TOKEN=$(kubectl -n lakehouse create token pipeline-runner)`"
        )
    if answer.status_code != 200:
        raise SubmitError(
            f"the KFP API at {host} answered healthz with {answer.status_code}: {answer.text[:200]}"
        )


def _reason(exc: Exception) -> str:
    """Status and the server's own message (first line) of a kfp_server_api ApiException."""
    import json

    message = ""
    try:
        body = json.loads(getattr(exc, "body", None) or "{}")
        message = str(body.get("message") or body.get("error") or "").splitlines()[0]
    except (ValueError, AttributeError, IndexError):
        pass
    return f"{getattr(exc, 'status', '')} {getattr(exc, 'reason', '')}" + (
        f": {message[:300]}" if message else ""
    )


@contextlib.contextmanager
def quiet_client(host: str, token: str | None) -> Iterator[Any]:
    """A `kfp.Client` for `host`: it prints a link per call and warns about pre-2.0 servers, and these
    commands print their own lines, so both are kept quiet while it is used."""
    import kfp

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="kfp")
        yield kfp.Client(host=host, existing_token=token)


def submit(
    package: Path,
    host: str,
    parameters: dict[str, Any],
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    schedule: str | None = None,
    token: str | None = None,
    pipeline_name: str = PIPELINE_NAME,
) -> Submitted:
    """Upload `package` (a new version when the pipeline exists) and start a run, or a recurring run on the
    cron `schedule`, in `experiment`.

    Args:
        package: the compiled pipeline YAML (`lakehouse compile --profile cluster`).
        host: the KFP API/UI base URL, e.g. http://127.0.0.1:8080.
        parameters: the pipeline's parameters.
        experiment: the experiment's name (created when missing).
        run_name: the run's name (default: `churn-training <UTC time>`).
        schedule: a cron expression (six fields, seconds first, as KFP reads them) for a recurring run.
        token: a bearer token (default: :func:`bearer_token`).
        pipeline_name: the pipeline the package becomes a version of.
    """
    import kfp

    from pipelines.cluster import SERVICE_ACCOUNT

    if not package.exists():
        raise SubmitError(f"{package} does not exist: compile it with `lakehouse compile --profile cluster`")
    token = token or bearer_token()
    check_server(host, token)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    with quiet_client(host, token) as client:
        try:
            pipeline_id = client.get_pipeline_id(pipeline_name)
            if pipeline_id is None:
                pipeline_id = client.upload_pipeline(str(package), pipeline_name).pipeline_id
            version = client.upload_pipeline_version(
                str(package), f"{pipeline_name} {stamp}", pipeline_id=pipeline_id
            )
            experiment_id = client.create_experiment(experiment).experiment_id
            common = dict(
                experiment_id=experiment_id,
                job_name=run_name or f"{pipeline_name} {stamp}",
                params=parameters,
                pipeline_id=pipeline_id,
                version_id=version.pipeline_version_id,
                service_account=SERVICE_ACCOUNT,
            )
            if schedule:
                created = client.create_recurring_run(cron_expression=schedule, **common)
                run_id, path = created.recurring_run_id, "recurringrun/details"
            else:
                run_id, path = client.run_pipeline(**common).run_id, "runs/details"
        except kfp.client.client.kfp_server_api.ApiException as exc:
            raise SubmitError(f"the KFP API at {host} refused the submission: {_reason(exc)}") from None
    return Submitted(
        pipeline_id=pipeline_id,
        version_id=version.pipeline_version_id,
        experiment_id=experiment_id,
        run_id=run_id,
        url=f"{host.rstrip('/')}/#/{path}/{run_id}",
        recurring=bool(schedule),
    )


#: The states a KFP run ends in.
FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED"})


def wait_for_run(host: str, run_id: str, timeout: float, token: str | None = None, poll: float = 5) -> str:
    """Wait until the run ends and return its state (SUCCEEDED, FAILED, SKIPPED, CANCELED).

    With Kubernetes credentials at hand (the kubeconfig), a step whose pod cannot start for its image ends
    the wait at once: the run is terminated (nothing after that step will run) and the error names the step
    and the image.

    Raises:
        SubmitError: the run has not ended within `timeout` seconds, a step's image cannot be pulled, or the
            API cannot be asked.
    """
    import kfp
    import urllib3

    token = token or bearer_token()
    deadline = time.monotonic() + timeout
    pods = _pod_reader()
    with quiet_client(host, token) as client:
        while True:
            try:
                run = client.get_run(run_id)
            except kfp.client.client.kfp_server_api.ApiException as exc:
                raise SubmitError(
                    f"the KFP API at {host} cannot tell run {run_id}'s state: {_reason(exc)}"
                ) from None
            except urllib3.exceptions.HTTPError as exc:
                reason = str(getattr(exc, "reason", exc)).split(": ")[-1]
                raise SubmitError(f"lost the KFP API at {host} waiting for run {run_id}: {reason}") from None
            state = str(run.state)
            if state in FINAL_STATES:
                return state
            stuck = unstartable_step(run, pods) if pods else None
            if stuck:
                client.terminate_run(run_id)
                raise SubmitError(f"run {run_id} terminated: {stuck}")
            if time.monotonic() > deadline:
                raise SubmitError(f"run {run_id} is still {state} after {timeout:.0f} s")
            time.sleep(poll)


#: The kubelet's reasons for a container that cannot start because of its image (after a retry: a first
#: ErrImagePull may pass).
IMAGE_REASONS = frozenset({"ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"})
#: The pod annotation holding Argo's name of the workflow node the pod runs.
NODE_NAME = "workflows.argoproj.io/node-name"


def step_of(node_name: str) -> str | None:
    """The pipeline task whose code a pod runs, from its Argo node name (`<run>.root.<task>.executor`);
    None for a driver's or any other pod."""
    parts = node_name.split(".")
    return parts[-2] if len(parts) >= 3 and parts[-1] == "executor" else None


def _kubernetes() -> Any:
    """An API client from the kubeconfig (or the pod's ServiceAccount), or None without credentials."""
    from components.core.kubernetes import KubernetesError, api_client

    try:
        return api_client()
    except KubernetesError:
        return None


def _pod_reader() -> Any:
    """A function reading a pod of the runs' namespace by name, or None without Kubernetes credentials."""
    api = _kubernetes()
    if api is None:
        return None
    from kubernetes import client

    core = client.CoreV1Api(api)
    return lambda name: core.read_namespaced_pod(name, NAMESPACE, _request_timeout=10)


#: The label Kubeflow Pipelines puts on the Argo Workflow of a run.
RUN_ID_LABEL = "pipeline/runid"
#: What the exit codes of a step killed from outside mean, after Argo's `Error (exit code N)`.
EXIT_HINTS = {
    "(exit code 137)": ": killed by SIGKILL (out of memory, or its pod deleted at once)",
    "(exit code 143)": ": stopped by SIGTERM (its pod deleted or evicted)",
}


def failed_steps(run_id: str) -> list[str]:
    """One line per step of the run whose pod failed, with Argo's reason (`pod deleted`, an exit code),
    read from the run's Argo Workflow; empty without Kubernetes credentials or when it cannot be read."""
    api = _kubernetes()
    if api is None:
        return []
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from components.core.kubernetes import TRANSPORT_ERRORS

    try:
        found = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "argoproj.io", "v1alpha1", NAMESPACE, "workflows",
            label_selector=f"{RUN_ID_LABEL}={run_id}", _request_timeout=10,
        )  # fmt: skip
    except (ApiException, *TRANSPORT_ERRORS):
        return []
    lines = []
    for workflow in found.get("items", []):
        for node in ((workflow.get("status") or {}).get("nodes") or {}).values():
            step = step_of(node.get("name", ""))
            if step and node.get("phase") in ("Failed", "Error"):
                message = node.get("message") or node["phase"]
                hint = next((h for code, h in EXIT_HINTS.items() if message.endswith(code)), "")
                lines.append(f"step {step!r} failed: {message}{hint}")
    return sorted(lines)


def unstartable_step(run: Any, read_pod: Any) -> str | None:
    """One line naming the first step of `run` whose pod cannot start for its image, else None."""
    from kubernetes.client.exceptions import ApiException

    from components.core.kubernetes import TRANSPORT_ERRORS

    tasks = (run.run_details.task_details if run.run_details else None) or []
    names = {c.pod_name for t in tasks for c in (t.child_tasks or []) if c.pod_name}
    for name in sorted(names):
        try:
            pod = read_pod(name)
        except (ApiException, *TRANSPORT_ERRORS):
            continue
        if pod.status is None or pod.status.phase not in ("Pending", None):
            continue
        statuses = (pod.status.init_container_statuses or []) + (pod.status.container_statuses or [])
        for status in statuses:
            waiting = status.state.waiting if status.state else None
            if waiting is not None and waiting.reason in IMAGE_REASONS:
                step = step_of((pod.metadata.annotations or {}).get(NODE_NAME, "")) or name
                return (
                    f"step {step!r} cannot start: image {status.image} cannot be pulled "
                    f"({waiting.reason}: {waiting.message or 'no message'})"
                )
    return None
