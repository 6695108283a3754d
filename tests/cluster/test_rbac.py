"""Least privilege checked by the API server: what the Polaris setup Job and the pipeline steps may do."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from infrastructure.apiserver.server import ApiServer
from infrastructure.cluster import webhook_cert
from infrastructure.cluster.polaris_setup import (
    CLIENTS,
    PIPELINE_PRIVILEGES,
    catalog_body,
    credentials_only,
    store_credentials,
    stored_credentials,
)
from testing.manifests import dump

RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "Secret"}


@pytest.fixture(scope="module")
def applied(lakehouse_namespace: ApiServer, rendered) -> ApiServer:
    """The dev overlay's ServiceAccounts, Roles, RoleBindings and Secrets, applied for real."""
    lakehouse_namespace.apply(dump([o for o in rendered["dev"] if o["kind"] in RBAC_KINDS]))
    return lakehouse_namespace


def _as(api: ApiServer, service_account: str, namespace: str = "lakehouse") -> client.ApiClient:
    """A `kubernetes` client holding a token the API server issued for the ServiceAccount."""
    return _client(api, api.kubectl("create", "token", service_account, "-n", namespace).stdout.strip())


def _client(api: ApiServer, token: str) -> client.ApiClient:
    """A `kubernetes` client of the API server presenting `token`."""
    config = client.Configuration(host=api.url)
    config.ssl_ca_cert = str(api.ca_file)
    config.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(config)


def test_polaris_setup_writes_only_the_principals_secrets_and_a_reapply_keeps_them(applied, rendered):
    setup = _as(applied, "polaris-setup")
    for principal in CLIENTS:
        store_credentials(setup, "lakehouse", principal.secret, f"{principal.principal}-id", "s3cr3t")
    with pytest.raises(ApiException) as refused:
        store_credentials(setup, "lakehouse", "postgres", "x", "y")
    assert refused.value.status == 403
    with pytest.raises(ApiException):
        client.CoreV1Api(setup).list_namespaced_secret("lakehouse")
    # applying the manifests again (another field manager) leaves the written credentials alone
    applied.apply(dump([o for o in rendered["dev"] if o["kind"] in RBAC_KINDS]))
    admin = _as(applied, "polaris-setup")
    assert stored_credentials(admin, "lakehouse", "polaris-trino") == {
        "client_id": "trino-id",
        "client_secret": "s3cr3t",  # pragma: allowlist secret
    }


def test_credentials_only_fills_empty_secrets_once_as_the_setup_job(applied):
    """The `node` overlay's setup: random credentials per client, written by the Job's own ServiceAccount;
    a second run (the Job retried) keeps them, so the catalog and its clients never disagree."""
    setup = _as(applied, "polaris-setup")
    for principal in CLIENTS:  # as a fresh apply leaves them: no keys
        body = {"data": {"client_id": None, "client_secret": None}}
        client.CoreV1Api(setup).patch_namespaced_secret(principal.secret, "lakehouse", body)
    env = {"POD_NAMESPACE": "lakehouse"}
    first = credentials_only(env, setup)
    assert first == [f"principal {c.principal}: new credentials in Secret {c.secret}" for c in CLIENTS]
    stored = {c.secret: stored_credentials(setup, "lakehouse", c.secret) for c in CLIENTS}
    for principal in CLIENTS:
        values = stored[principal.secret]
        assert values["client_id"].startswith(f"{principal.principal}-")
        assert len(values["client_secret"]) >= 40
    assert len({values["client_secret"] for values in stored.values()}) == len(CLIENTS)
    second = credentials_only(env, setup)
    assert second == [f"principal {c.principal}: credentials already in Secret {c.secret}" for c in CLIENTS]
    assert {c.secret: stored_credentials(setup, "lakehouse", c.secret) for c in CLIENTS} == stored


def test_the_pipeline_runner_may_roll_out_the_inference_service_and_read_nothing_else(applied):
    def can(verb: str, resource: str) -> bool:
        done = applied.kubectl(
            "auth",
            "can-i",
            verb,
            resource,
            "-n",
            "lakehouse",
            "--as=system:serviceaccount:lakehouse:pipeline-runner",
            check=False,
        )
        return done.stdout.strip() == "yes"

    assert can("create", "inferenceservices.serving.kserve.io") and can(
        "patch", "inferenceservices.serving.kserve.io"
    )
    assert can("get", "secret/model-server-credentials"), "the deploy step checks the predictor's keys"
    assert not can("get", "secret/lakehouse-credentials") and not can("get", "secret/postgres")
    assert not can("list", "secrets") and not can("delete", "pods")


ISVC_POLICY = "lakehouse-inference-service-shape"


@pytest.fixture
def isvc_policy(applied: ApiServer, rendered) -> Iterator[ApiServer]:
    """The dev overlay's InferenceService admission policy and its binding, applied for real; removed after
    (the other tests' InferenceServices are not made by the pipeline's account, but stay out of its way)."""
    chosen = [o for o in rendered["dev"] if o["metadata"]["name"] == ISVC_POLICY]
    assert {o["kind"] for o in chosen} == {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    applied.apply(dump(chosen))
    try:
        yield applied
    finally:
        for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
            applied.kubectl("delete", kind, ISVC_POLICY, check=False)


def test_the_pipeline_runner_rolls_out_only_a_predictor_reading_its_own_secrets(isvc_policy) -> None:
    import copy
    import time

    from components.deployment.deploy import render_inference_service

    runner = client.CustomObjectsApi(_as(isvc_policy, "pipeline-runner"))

    def create(manifest: dict, api: client.CustomObjectsApi = runner) -> None:
        api.create_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", "lakehouse", "inferenceservices", manifest, dry_run="All"
        )

    good = render_inference_service("1")
    good["metadata"]["name"] = "churn-shape-check"  # dry runs: beside the `churn` other tests create for real
    deadline = time.monotonic() + 30
    while True:  # a new policy takes a moment to be enforced: until a bad object is refused
        container = good["spec"]["predictor"]["containers"][0]
        reads_postgres = copy.deepcopy(good)
        reads_postgres["spec"]["predictor"]["containers"][0]["envFrom"] = [
            *container["envFrom"],
            {"secretRef": {"name": "postgres"}},
        ]
        try:
            create(reads_postgres)
        except ApiException as refused:
            allowed = "model-server-credentials, lakehouse-alerts and redis"
            assert f"may read only the Secrets {allowed}" in refused.body
            break
        assert time.monotonic() < deadline, "the admission policy never refused a Secret outside its list"
        time.sleep(0.5)
    create(good)  # what the deploy step rolls out
    by_key = copy.deepcopy(good)
    by_key["spec"]["predictor"]["containers"][0]["env"].append(
        {"name": "STOLEN", "valueFrom": {"secretKeyRef": {"name": "polaris-root", "key": "x"}}}
    )
    mounted = copy.deepcopy(good)
    secret_volume = {"name": "keys", "secret": {"secretName": "postgres"}}  # pragma: allowlist secret
    mounted["spec"]["predictor"]["volumes"].append(secret_volume)
    other_account = copy.deepcopy(good)
    other_account["spec"]["predictor"]["serviceAccountName"] = "polaris-setup"
    transformer = copy.deepcopy(good)
    transformer["spec"]["transformer"] = {"containers": [copy.deepcopy(container)]}
    for manifest, message in (
        (by_key, "may read only the Secrets"),
        (mounted, "may mount scratch space (emptyDir) only"),
        (other_account, "runs under the namespace's default ServiceAccount"),
        (transformer, "rolls out a predictor only"),
    ):
        with pytest.raises(ApiException) as refused:
            create(manifest)
        assert refused.value.status in (403, 422) and message in refused.value.body
    # an administrator is not held to it: the policy is about what the pipeline's account may do
    create(reads_postgres, client.CustomObjectsApi(_client(isvc_policy, isvc_policy.token)))


def test_the_catalog_is_path_style_without_sts_and_no_client_manages_access():
    storage = catalog_body("lakehouse", "s3://lakehouse/warehouse", "http://minio:9000", "us-east-1")[
        "catalog"
    ]
    assert (
        storage["storageConfigInfo"] | {"stsUnavailable": True, "pathStyleAccess": True}
        == storage["storageConfigInfo"]
    )
    for principal in CLIENTS:
        assert not [p for p in principal.privileges if "MANAGE" in p or p.endswith("FULL_METADATA")]
        assert "NAMESPACE_DROP" not in principal.privileges
    assert "TABLE_DROP" not in PIPELINE_PRIVILEGES


WEBHOOK_KINDS = {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
WEBHOOK_NAME = "inferenceservice.serving.kserve.io"


@pytest.fixture
def webhooks(lakehouse_namespace: ApiServer, rendered) -> Iterator[ApiServer]:
    """The `node` overlay's KServe webhook objects and the certificate Job's permissions, applied for real;
    the webhook configurations are removed afterwards (no server answers them here, and they would refuse
    every InferenceService the other tests create)."""
    chosen = [
        o
        for o in rendered["node"]
        if (
            o["kind"] in RBAC_KINDS | {"ClusterRole", "ClusterRoleBinding"}
            and "kserve" in o["metadata"]["name"]
        )
        or o["kind"] in WEBHOOK_KINDS
    ]
    lakehouse_namespace.apply(dump(chosen))
    try:
        yield lakehouse_namespace
    finally:
        for kind in WEBHOOK_KINDS:
            lakehouse_namespace.kubectl("delete", kind.lower(), WEBHOOK_NAME, check=False)


def test_the_webhook_certificate_job_signs_for_the_service_and_sets_each_ca_bundle_once(webhooks):
    """The `node` overlay's stand-in for cert-manager, as its Job's ServiceAccount: a certificate for every
    name of the webhook Service in the Secret the controller mounts, its CA in both configurations; a second
    run (the Job retried) keeps both; nothing else is within its reach."""
    from cryptography import x509

    job = _as(webhooks, "kserve-webhook-cert", "kserve")
    env = {
        "POD_NAMESPACE": "kserve",
        "WEBHOOK_SERVICE": "kserve-webhook-server-service",
        "WEBHOOK_SECRET": "kserve-webhook-server-cert",  # pragma: allowlist secret (a Secret's name)
        "MUTATING_WEBHOOKS": WEBHOOK_NAME,
        "VALIDATING_WEBHOOKS": WEBHOOK_NAME,
    }
    first = webhook_cert.setup(env, job)
    assert first[0].startswith("certificate for kserve-webhook-server-service.kserve.svc: new")
    assert first[1:] == [
        f"{kind} webhook configuration {WEBHOOK_NAME}: CA set" for kind in ("mutating", "validating")
    ]
    pair = webhook_cert.stored_pair(job, "kserve", "kserve-webhook-server-cert")
    cert = x509.load_pem_x509_certificate(pair.cert)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(pair.ca))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kserve-webhook-server-service.kserve.svc" in names.get_values_for_type(x509.DNSName)
    admission = client.AdmissionregistrationV1Api(job)
    for read in (
        admission.read_mutating_webhook_configuration,
        admission.read_validating_webhook_configuration,
    ):
        (hook,) = read(WEBHOOK_NAME).webhooks
        assert base64.b64decode(hook.client_config.ca_bundle) == pair.ca

    second = webhook_cert.setup(env, job)
    assert second[0].endswith(".svc: kept (Secret kserve-webhook-server-cert)")
    assert all(line.endswith("CA already set") for line in second[1:])
    assert webhook_cert.stored_pair(job, "kserve", "kserve-webhook-server-cert") == pair

    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(job).read_namespaced_secret("lakehouse-credentials", "lakehouse")
    assert refused.value.status == 403
    with pytest.raises(ApiException):
        admission.list_mutating_webhook_configuration()
    with pytest.raises(webhook_cert.SetupError, match="WEBHOOK_SECRET is not set"):
        webhook_cert.setup({"WEBHOOK_SERVICE": "x"}, job)
