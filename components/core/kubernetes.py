"""The Kubernetes API as the platform reaches it: credentials, the platform's namespace, one-line errors.

Used by the deploy step (the `InferenceService`), by `lakehouse submit` (a failed run's pods) and by the
cluster's setup Jobs; each imports the `kubernetes` package only when it talks to a cluster.
"""

from __future__ import annotations

import json
import os
from typing import Any

from urllib3.exceptions import HTTPError

#: The namespace the platform runs in, and the field manager of what it applies server-side.
NAMESPACE = "lakehouse"
FIELD_MANAGER = "lakehouse"

#: Errors of reaching the API server at all (refused connection, TLS, DNS), as urllib3 raises them.
TRANSPORT_ERRORS = (OSError, HTTPError)


class KubernetesError(RuntimeError):
    """The Kubernetes API cannot be used as asked; the one-line message says what to run."""


def api_client(kubeconfig: str | None = None) -> Any:
    """A `kubernetes` ApiClient: in-cluster credentials inside a pod, else the kubeconfig ($KUBECONFIG or
    ~/.kube/config; its bearer token or client certificate)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
            return client.ApiClient()
        # $KUBECONFIG read now: the client reads it once, when first imported
        return config.new_client_from_config(config_file=kubeconfig or os.environ.get("KUBECONFIG") or None)
    except (ConfigException, OSError) as exc:
        raise KubernetesError(
            f"no Kubernetes credentials ({exc}): set KUBECONFIG or run `kubectl config use-context CONTEXT`"
        ) from None


def api_error(exc: Exception, doing: str, error: type[KubernetesError] = KubernetesError) -> KubernetesError:
    """One line (as an `error`) from a `kubernetes` ApiException or a connection error."""
    from kubernetes.client.exceptions import ApiException

    if not isinstance(exc, ApiException):
        return error(f"{doing}: cannot reach the Kubernetes API ({exc}): check `kubectl cluster-info`")
    try:
        message = json.loads(exc.body or "{}").get("message") or exc.reason
    except ValueError:
        message = exc.reason
    if exc.status == 401:
        return error(
            f"{doing}: the Kubernetes API refused the credentials (expired token?): "
            "renew them, e.g. `kubectl config set-credentials USER --token=NEW_TOKEN`"
        )
    if exc.status == 403:
        return error(f"{doing}: forbidden ({message}): bind the role in pipeline-runner.yaml")
    return error(f"{doing}: {exc.status} {message}")
