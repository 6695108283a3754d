"""Render a kustomize overlay of `infrastructure/kubernetes/` after checking its Secrets' env files."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

KUBERNETES_DIR = Path(__file__).resolve().parents[1] / "kubernetes"
OVERLAYS = ("dev", "prod", "node")
_KEY = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")


class ManifestError(ValueError):
    """An overlay cannot be rendered; the one-line message names what is wrong and how to fix it."""


def env_keys(path: Path) -> dict[str, str]:
    """The `KEY=value` lines of an env file (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        match = _KEY.match(line)
        if match and not line.lstrip().startswith("#"):
            values[match.group(1)] = match.group(2).strip()
    return values


#: Keys an env file may leave empty (the feature they configure is then off).
OPTIONAL_KEYS = frozenset({"LAKEHOUSE_ALERT_WEBHOOK_URL"})
#: Fewest characters of a password or secret key (MinIO refuses shorter secret keys), and of an id or user.
MIN_SECRET_CHARS, MIN_ID_CHARS = 8, 3
#: Keys written as they are into a URL (a manifest's `$(VAR)` cannot quote them: MLflow's database URL,
#: the object-store setup's `MC_HOST_store`, Redis' URL in the settings) or a file (Polaris' root
#: credential, single-quoted in its credentials file), and what they may hold.
URL_KEYS = frozenset(
    {
        "MLFLOW_DB_PASSWORD",
        "MINIO_ROOT_USER",
        "MINIO_ROOT_PASSWORD",
        "REDIS_PASSWORD",
        "POLARIS_ROOT_CLIENT_ID",
        "POLARIS_ROOT_CLIENT_SECRET",
    }
)
_URL_SAFE = re.compile(r"^[A-Za-z0-9._~-]+$")


def check_value(key: str, value: str) -> str | None:
    """What is wrong with `value` for `key` (None when nothing is): too short for a secret or an id, a
    character that breaks the URL it is written into, a webhook that is not an http(s) URL."""
    if key in OPTIONAL_KEYS and not value:
        return None
    if ("PASSWORD" in key or "SECRET" in key) and len(value) < MIN_SECRET_CHARS:
        return f"has {len(value)} characters: a secret needs at least {MIN_SECRET_CHARS}"
    if key.endswith(("_ID", "_USER")) and len(value) < MIN_ID_CHARS:
        return f"has {len(value)} characters: an id needs at least {MIN_ID_CHARS}"
    if key in URL_KEYS and not _URL_SAFE.match(value):
        shown = "".join(sorted({c for c in value if not _URL_SAFE.match(c)}))
        return (
            f"holds {shown!r}, which would break the URL or file it is written into: use letters, digits "
            "and -._~"
        )
    if key.endswith("_URL") and not value.startswith(("https://", "http://")):
        return "is not an http(s) URL"
    return None


def check_secret_files(root: Path = KUBERNETES_DIR) -> list[Path]:
    """Check that every `*.env.example` under `root` has its env file, with every key set (those of
    `OPTIONAL_KEYS` may be empty) to a value :func:`check_value` accepts.

    Returns:
        The env files checked.

    Raises:
        ManifestError: a file is missing, or a key is missing, empty or unfit (naming it and why).
    """
    checked, s3_users = [], {}
    for example in sorted(root.rglob("*.env.example")):
        env_file = example.with_suffix("")
        fix = f"cp {example} {env_file} and fill it in"
        if not env_file.exists():
            raise ManifestError(f"{env_file} is missing: {fix}")
        values = env_keys(env_file)
        for key in env_keys(example):
            if key not in values:
                raise ManifestError(f"{env_file} has no key {key}: add `{key}=...` (see {example.name})")
            if not values[key] and key not in OPTIONAL_KEYS:
                raise ManifestError(f"{env_file} leaves {key} empty: set it (see {example.name})")
            problem = check_value(key, values[key])
            if problem:
                raise ManifestError(f"{env_file}: {key} {problem} (see {example.name})")
        if values.get("AWS_ACCESS_KEY_ID"):
            _check_distinct_s3_user(values["AWS_ACCESS_KEY_ID"], env_file, s3_users)
        checked.append(env_file)
    return checked


def _check_distinct_s3_user(key_id: str, env_file: Path, owners: dict[str, Path]) -> None:
    """Each S3 key pair is a user of its own in the object store, limited to what its client reads and
    writes: one access key id in two files would make them one user, the second file's secret and policy
    winning. `owners` holds the ids of the files checked before."""
    if key_id in owners:
        raise ManifestError(
            f"{env_file} and {owners[key_id]} set the same AWS_ACCESS_KEY_ID: each is an object-store "
            "user of its own, limited to what its client reads and writes; give each its own"
        )
    owners[key_id] = env_file


def render(overlay: str, root: Path = KUBERNETES_DIR) -> str:
    """`kubectl kustomize <root>/overlays/<overlay>`, after :func:`check_secret_files`.

    Raises:
        ManifestError: an unknown overlay, a Secret env file not ready, kubectl missing or failing.
    """
    folder = root / "overlays" / overlay
    if not (folder / "kustomization.yaml").exists():
        known = ", ".join(sorted(p.parent.name for p in (root / "overlays").glob("*/kustomization.yaml")))
        raise ManifestError(f"no overlay {overlay!r} in {root / 'overlays'}: choose one of {known}")
    check_secret_files(root)
    kubectl = shutil.which("kubectl")
    if not kubectl:
        raise ManifestError("kubectl not found: install it (https://kubernetes.io/docs/tasks/tools/)")
    done = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ManifestError(f"kubectl kustomize {folder} failed: {last}")
    return done.stdout


def objects(rendered: str) -> list[dict]:
    """The objects of a rendered multi-document YAML stream."""
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


#: The NetworkPolicy that lets the pods labelled `lakehouse.io/kubernetes-api-client` reach the Kubernetes
#: API: TCP 443 (the `kubernetes` Service) and 6443 (the usual port of the API server itself) to any address
#: until `limit_api_egress` names the cluster's own.
API_EGRESS_POLICY = "kubernetes-api-egress"
API_PORTS = (443, 6443)
FROM_CLUSTER = "from-cluster"


def api_destination(text: str) -> tuple[str, tuple[int, ...]]:
    """`ADDRESS[/PREFIX][:PORT]` (an IPv6 address in brackets when a port follows) as (CIDR, ports); without
    a port, both of `API_PORTS` (the Service's and the API server's own, as a CNI may check either).

    Raises:
        ManifestError: not an IP address or network, or a port outside 1-65535 (named).
    """
    address, ports = text.strip(), API_PORTS
    bracketed = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", address)
    if bracketed:
        address, port = bracketed.group(1), bracketed.group(2)
    elif address.count(":") == 1:
        address, port = address.split(":")
    else:
        port = None
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ManifestError(f"--api-server {text!r}: port {port!r} is not a TCP port (1-65535)")
        ports = (int(port),)
    try:
        network = ipaddress.ip_network(address, strict=False)
    except ValueError:
        expected = f"ADDRESS[/PREFIX][:PORT], or {FROM_CLUSTER}"
        raise ManifestError(f"--api-server {text!r}: not an IP address or network ({expected})") from None
    return str(network), ports


def limit_api_egress(objs: list[dict], destinations: Sequence[tuple[str, tuple[int, ...]]]) -> list[dict]:
    """`objs` with `API_EGRESS_POLICY` allowing only `destinations` (CIDR, ports), one rule each.

    Raises:
        ManifestError: no destination, or the objects hold no such policy.
    """
    if not destinations:
        raise ManifestError("no address of the Kubernetes API server given")
    policies = [
        o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == API_EGRESS_POLICY
    ]
    if len(policies) != 1:
        raise ManifestError(f"the manifests hold {len(policies)} NetworkPolicy {API_EGRESS_POLICY}, not 1")
    policies[0]["spec"]["egress"] = [
        {"to": [{"ipBlock": {"cidr": cidr}}], "ports": [{"protocol": "TCP", "port": port} for port in ports]}
        for cidr, ports in destinations
    ]
    return objs


def api_server_destinations(kubeconfig: str | None = None) -> list[tuple[str, tuple[int, ...]]]:
    """Where the cluster of `kubeconfig` (else $KUBECONFIG, ~/.kube/config) serves its API: the `kubernetes`
    Service's cluster IPs and port, and the addresses and port of the API servers behind it (its
    EndpointSlices; its Endpoints on an API server without a controller manager to mirror them).

    Raises:
        ManifestError: the cluster cannot be reached or names no API server address (the message says which).
    """
    from kubernetes import client

    from components.core.kubernetes import TRANSPORT_ERRORS, KubernetesError, api_client, api_error

    doing = "reading the address of the Kubernetes API (Service default/kubernetes)"
    try:
        api = api_client(kubeconfig)
        service = client.CoreV1Api(api).read_namespaced_service("kubernetes", "default")
        slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
            "default", label_selector="kubernetes.io/service-name=kubernetes"
        )
        groups = [
            ([ip for endpoint in s.endpoints or [] for ip in endpoint.addresses], s.ports or [])
            for s in slices.items
        ]
        if not groups:
            groups = _endpoint_subsets(client.CoreV1Api(api))
    except KubernetesError as exc:
        raise ManifestError(str(exc)) from None
    except (client.ApiException, *TRANSPORT_ERRORS) as exc:
        raise ManifestError(str(api_error(exc, doing))) from None
    servers = [
        (_host_cidr(ip), tuple(sorted({p.port for p in ports if p.port})))
        for ips, ports in groups
        for ip in ips
    ]
    if not servers:
        raise ManifestError(f"{doing}: no API server address is listed behind it")
    port = next(p.port for p in service.spec.ports if p.name == "https")
    service_ips = service.spec.cluster_i_ps or [service.spec.cluster_ip]  # the client's name for clusterIPs
    return [(_host_cidr(ip), (port,)) for ip in service_ips] + servers


def _endpoint_subsets(core: Any) -> list[tuple[list[str], list]]:
    """The (IP addresses, ports) of Endpoints default/kubernetes; none when it does not exist."""
    from kubernetes import client

    try:
        endpoints = core.read_namespaced_endpoints("kubernetes", "default")
    except client.ApiException as exc:
        if exc.status == 404:
            return []
        raise
    return [
        ([address.ip for address in subset.addresses or []], subset.ports or [])
        for subset in endpoints.subsets or []
    ]


def _host_cidr(ip: str) -> str:
    return f"{ip}/{ipaddress.ip_address(ip).max_prefixlen}"
