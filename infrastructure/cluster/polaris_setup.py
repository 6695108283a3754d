"""Set Polaris up from inside the cluster (Job `polaris-setup`): catalog `lakehouse` on the object store, and
per client (Trino, the pipeline steps) a principal, a principal role and a catalog role with only the
privileges that client needs; each principal's credentials go into its Kubernetes Secret. Idempotent.

With `--credentials-only` (the `node` overlay, whose catalog is the REST catalog server configured by its
clients' Secrets rather than Polaris) it only fills each client's Secret with new random credentials when
it has none."""

from __future__ import annotations

import argparse
import base64
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infrastructure.cluster.jobs import run_step

SCOPE = "PRINCIPAL_ROLE:ALL"
#: What the pipeline steps do in the catalog: create namespaces and tables (dlt, the gold writers), read and
#: commit data and properties (appends, merges, snapshot roll-backs). No drop, no access management.
PIPELINE_PRIVILEGES = (
    "NAMESPACE_CREATE",
    "NAMESPACE_LIST",
    "NAMESPACE_READ_PROPERTIES",
    "TABLE_CREATE",
    "TABLE_LIST",
    "TABLE_READ_PROPERTIES",
    "TABLE_WRITE_PROPERTIES",
    "TABLE_READ_DATA",
    "TABLE_WRITE_DATA",
)
#: Trino runs dbt: the same, plus replacing tables and the `stg_` views.
TRINO_PRIVILEGES = (
    *PIPELINE_PRIVILEGES,
    "TABLE_DROP",
    "VIEW_CREATE",
    "VIEW_DROP",
    "VIEW_LIST",
    "VIEW_READ_PROPERTIES",
    "VIEW_WRITE_PROPERTIES",
)


@dataclass(frozen=True)
class Client:
    """One client of the catalog: its principal (and role names) and the Secret that holds its credentials."""

    principal: str
    secret: str
    privileges: tuple[str, ...]


CLIENTS = (
    Client("trino", "polaris-trino", TRINO_PRIVILEGES),
    Client("pipeline", "polaris-pipeline", PIPELINE_PRIVILEGES),
)


class SetupError(RuntimeError):
    """Polaris refused a step; the message names it."""


def catalog_body(name: str, location: str, endpoint: str, region: str) -> dict:
    """The catalog on an S3 store without STS, path-style (MinIO or any S3 server)."""
    return {
        "catalog": {
            "name": name,
            "type": "INTERNAL",
            "properties": {"default-base-location": location},
            "storageConfigInfo": {
                "storageType": "S3",
                "allowedLocations": [location],
                "endpoint": endpoint,
                "pathStyleAccess": True,
                "stsUnavailable": True,
                "region": region,
            },
        }
    }


class Polaris:
    """The management API of one Polaris, as the root principal."""

    def __init__(self, url: str, client_id: str, client_secret: str) -> None:
        import httpx

        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=30)
        token = self.http.post(
            "/api/catalog/v1/oauth/tokens",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
                "scope": SCOPE,
            },
        )
        self._check(token, "getting a token for the root principal")
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    @staticmethod
    def _check(response: Any, doing: str, exists_ok: bool = False) -> None:
        if response.status_code == 409 and exists_ok:
            return
        if response.status_code >= 300:
            raise SetupError(f"{doing}: Polaris answered {response.status_code} {response.text[:300]}")

    def call(self, method: str, path: str, body: dict | None, doing: str, exists_ok: bool = False) -> Any:
        response = self.http.request(method, f"/api/management/v1{path}", json=body)
        self._check(response, doing, exists_ok)
        return response

    def credentials(self, principal: str) -> tuple[str, str]:
        """Create `principal` and return its new credentials (rotated when it exists already)."""
        response = self.call("POST", "/principals", {"principal": {"name": principal}}, "creating", True)
        if response.status_code == 409:
            response = self.call("POST", f"/principals/{principal}/rotate", None, f"rotating {principal}")
        credentials = response.json()["credentials"]
        return credentials["clientId"], credentials["clientSecret"]


def grant(polaris: Polaris, catalog: str, client: Client) -> None:
    """Principal role and catalog role named after the client, the privileges, and the links between them."""
    name = client.principal
    polaris.call("POST", "/principal-roles", {"principalRole": {"name": name}}, f"role {name}", True)
    roles = f"/catalogs/{catalog}/catalog-roles"
    polaris.call("POST", roles, {"catalogRole": {"name": name}}, f"catalog role {name}", True)
    for privilege in client.privileges:
        body = {"grant": {"type": "catalog", "privilege": privilege}}
        polaris.call("PUT", f"{roles}/{name}/grants", body, f"granting {privilege} to {name}")
    link = {"catalogRole": {"name": name}}
    polaris.call("PUT", f"/principal-roles/{name}/catalog-roles/{catalog}", link, f"linking {name}")


def stored_credentials(api: Any, namespace: str, secret: str) -> dict[str, str]:
    """The decoded keys of a Secret (empty when it has none)."""
    from kubernetes import client

    data = client.CoreV1Api(api).read_namespaced_secret(secret, namespace).data or {}
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def store_credentials(api: Any, namespace: str, secret: str, client_id: str, client_secret: str) -> None:
    """Write a principal's credentials into its Secret (keys client_id, client_secret)."""
    write_secret(api, namespace, secret, {"client_id": client_id, "client_secret": client_secret})


def write_secret(api: Any, namespace: str, secret: str, values: Mapping[str, str]) -> None:
    """Set keys of an existing Secret (a patch: its other keys stay)."""
    from kubernetes import client

    client.CoreV1Api(api).patch_namespaced_secret(secret, namespace, {"stringData": dict(values)})


def setup(env: Mapping[str, str], api: Any) -> list[str]:
    """Run every step; returns one line per step done."""
    catalog, namespace = env.get("POLARIS_CATALOG", "lakehouse"), env.get("POD_NAMESPACE", "lakehouse")
    polaris = Polaris(env["POLARIS_URL"], env["POLARIS_ROOT_CLIENT_ID"], env["POLARIS_ROOT_CLIENT_SECRET"])
    body = catalog_body(catalog, env["POLARIS_WAREHOUSE_LOCATION"], env["S3_ENDPOINT"], env["S3_REGION"])
    polaris.call("POST", "/catalogs", body, f"creating catalog {catalog}", exists_ok=True)
    done = [f"catalog {catalog}: {env['POLARIS_WAREHOUSE_LOCATION']}"]
    for client in CLIENTS:
        grant(polaris, catalog, client)
        if stored_credentials(api, namespace, client.secret).get("client_id"):
            done.append(f"principal {client.principal}: credentials already in Secret {client.secret}")
        else:
            store_credentials(api, namespace, client.secret, *polaris.credentials(client.principal))
            done.append(f"principal {client.principal}: new credentials in Secret {client.secret}")
        principal_role = {"principalRole": {"name": client.principal}}
        path = f"/principals/{client.principal}/principal-roles"
        polaris.call("PUT", path, principal_role, f"assigning role {client.principal}")
    return done


#: The node's own database account (MariaDB of Kubeflow Pipelines, keys as KFP's components read them).
DATABASE_SECRET = "mysql-secret"  # pragma: allowlist secret (a Secret's name)


def credentials_only(env: Mapping[str, str], api: Any) -> list[str]:
    """Give each client's Secret credentials of its own when it has none (kept when it has); with
    `FILL_DATABASE_SECRET` set, also the database account of Secret `mysql-secret`."""
    namespace = env.get("POD_NAMESPACE", "lakehouse")
    done = []
    if env.get("FILL_DATABASE_SECRET"):
        if stored_credentials(api, namespace, DATABASE_SECRET).get("password"):
            done.append(f"database: credentials already in Secret {DATABASE_SECRET}")
        else:
            account = {"username": "root", "password": secrets.token_urlsafe(24)}
            write_secret(api, namespace, DATABASE_SECRET, account)
            done.append(f"database: new credentials in Secret {DATABASE_SECRET}")
    for client in CLIENTS:
        if stored_credentials(api, namespace, client.secret).get("client_id"):
            done.append(f"principal {client.principal}: credentials already in Secret {client.secret}")
            continue
        client_id = f"{client.principal}-{secrets.token_hex(4)}"
        store_credentials(api, namespace, client.secret, client_id, secrets.token_urlsafe(32))
        done.append(f"principal {client.principal}: new credentials in Secret {client.secret}")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="polaris_setup", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--credentials-only",
        action="store_true",
        help="only fill the clients' Secrets with credentials (a catalog that reads them, not Polaris)",
    )
    args = parser.parse_args(argv)
    return run_step(credentials_only if args.credentials_only else setup, SetupError, KeyError)


if __name__ == "__main__":
    sys.exit(main())
