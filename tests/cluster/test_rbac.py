"""Least privilege checked by the API server: what the Polaris setup Job and the pipeline steps may do."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from infrastructure.apiserver.server import ApiServer
from infrastructure.cluster.polaris_setup import (
    CLIENTS,
    PIPELINE_PRIVILEGES,
    catalog_body,
    credentials_only,
    store_credentials,
    stored_credentials,
)
from tests.cluster.manifests import dump

RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "Secret"}


@pytest.fixture(scope="module")
def applied(lakehouse_namespace: ApiServer, rendered) -> ApiServer:
    """The dev overlay's ServiceAccounts, Roles, RoleBindings and Secrets, applied for real."""
    lakehouse_namespace.apply(dump([o for o in rendered["dev"] if o["kind"] in RBAC_KINDS]))
    return lakehouse_namespace


def _as(api: ApiServer, service_account: str) -> client.ApiClient:
    """A `kubernetes` client holding a token the API server issued for the ServiceAccount."""
    token = api.kubectl("create", "token", service_account, "-n", "lakehouse").stdout.strip()
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
    assert can("get", "secret/lakehouse-credentials")
    assert not can("get", "secret/postgres") and not can("list", "secrets") and not can("delete", "pods")


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
