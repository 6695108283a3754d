"""Create or update the churn `InferenceService` through the Kubernetes API and wait until it is ready.

A failure before the apply (no credentials, a missing Secret key, a manifest the API server refuses)
changes nothing; a rollout that does not become ready in time is rolled back to the previous spec.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from components.core.kubernetes import (
    FIELD_MANAGER,
    NAMESPACE,
    TRANSPORT_ERRORS,
    KubernetesError,
    api_error,
)

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
#: The Secret the predictor reads its S3 keys from, and the keys it must hold.
CREDENTIALS_SECRET = "model-server-credentials"  # pragma: allowlist secret
CREDENTIALS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
#: The command that creates the Secrets (a command the scanner takes for a secret by its name).
# pragma: allowlist nextline secret
APPLY_SECRETS = "lakehouse manifests --overlay dev | kubectl apply --server-side -f -"


class DeployError(KubernetesError):
    """The rollout cannot happen or did not become ready; the one-line message says what to run."""


@dataclass(frozen=True)
class Rollout:
    """What `apply_and_wait` did: the object as the API server stored it and how long readiness took."""

    name: str
    namespace: str
    model_version: str
    image: str
    generation: int
    ready_after: float | None


def check_credentials_secret(api: Any, namespace: str = NAMESPACE) -> None:
    """Raise DeployError unless the predictor's Secret exists and holds every key it needs."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    where = f"Secret {namespace}/{CREDENTIALS_SECRET}"
    try:
        secret = client.CoreV1Api(api).read_namespaced_secret(CREDENTIALS_SECRET, namespace)
    except ApiException as exc:
        if exc.status == 404:
            raise DeployError(f"{where} does not exist: create it with `{APPLY_SECRETS}`") from None
        raise api_error(exc, f"reading {where}", DeployError) from None
    except TRANSPORT_ERRORS as exc:
        raise api_error(exc, f"reading {where}", DeployError) from None
    missing = [key for key in CREDENTIALS_KEYS if not (secret.data or {}).get(key)]
    if missing:
        raise DeployError(
            f"{where} has no key {missing[0]}: add it to "
            f"infrastructure/kubernetes/base/secrets/{CREDENTIALS_SECRET}.env and run `{APPLY_SECRETS}`"
        )


def read(api: Any, name: str, namespace: str = NAMESPACE) -> dict | None:
    """The stored InferenceService, or None when there is none."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        return client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise api_error(exc, f"reading InferenceService {namespace}/{name}", DeployError) from None
    except TRANSPORT_ERRORS as exc:
        raise api_error(exc, f"reading InferenceService {namespace}/{name}", DeployError) from None


def _apply(api: Any, manifest: dict) -> dict:
    """Server-side apply (create or update) of an InferenceService; the API server validates it first."""
    from kubernetes.client.exceptions import ApiException

    meta = manifest["metadata"]
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{meta['namespace']}/{PLURAL}/{meta['name']}"
    try:
        return api.call_api(
            path,
            "PATCH",
            query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
            body=manifest,
            response_type="object",
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
        )
    except (ApiException, *TRANSPORT_ERRORS) as exc:
        raise api_error(
            exc, f"applying InferenceService {meta['namespace']}/{meta['name']}", DeployError
        ) from None


def is_ready(obj: dict) -> bool:
    """Ready=True for the current generation of the spec (not a Ready left from the previous one)."""
    status = obj.get("status") or {}
    observed = status.get("observedGeneration")
    if observed is not None and observed < obj["metadata"].get("generation", 0):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))


def _not_ready_reason(obj: dict | None) -> str:
    for condition in ((obj or {}).get("status") or {}).get("conditions", []):
        if condition.get("type") == "Ready":
            return condition.get("message") or condition.get("reason") or "Ready is not True"
    return "no Ready condition yet"


def _previous_spec(previous: dict) -> dict:
    """The part of a stored object that apply owns, to roll back to."""
    meta = previous["metadata"]
    keep = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta}
    return {
        "apiVersion": previous["apiVersion"],
        "kind": previous["kind"],
        "metadata": keep,
        "spec": previous["spec"],
    }


def apply_and_wait(
    api: Any,
    manifest: dict,
    model_version: str,
    timeout: float = 600.0,
    wait: bool = True,
    poll: float = 2.0,
    version_of: Callable[[dict], str | None] = lambda obj: None,
) -> Rollout:
    """Create or update the InferenceService, then wait until it is ready (or roll back and raise).

    Args:
        api: a `kubernetes` ApiClient.
        manifest: the rendered InferenceService.
        model_version: the champion version it rolls out (for messages).
        timeout: seconds to wait for Ready=True.
        wait: False to return right after the apply.
        poll: seconds between status reads.
        version_of: reads the model version out of a stored object (for the rollback message).
    """
    meta = manifest["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    check_credentials_secret(api, namespace)
    previous = read(api, name, namespace)
    stored = _apply(api, manifest)
    started = time.monotonic()
    ready_after = None
    if wait:
        while not is_ready(stored):
            if time.monotonic() - started > timeout:
                reason = _not_ready_reason(stored)
                if previous is not None:
                    _apply(api, _previous_spec(previous))
                    undone = f"rolled back to model version {version_of(previous) or 'before'}"
                else:
                    undone = "it was not there before; delete it with `kubectl delete inferenceservice " + (
                        f"{name} -n {namespace}`"
                    )
                raise DeployError(
                    f"InferenceService {namespace}/{name} (model version {model_version}) not ready after "
                    f"{timeout:.0f} s ({reason}); {undone}; see `kubectl describe inferenceservice {name} "
                    f"-n {namespace}`"
                )
            time.sleep(poll)
            stored = read(api, name, namespace) or stored
        ready_after = time.monotonic() - started
    container = stored["spec"]["predictor"]["containers"][0]
    return Rollout(
        name=name,
        namespace=namespace,
        model_version=model_version,
        image=container["image"],
        generation=stored["metadata"].get("generation", 0),
        ready_after=ready_after,
    )
