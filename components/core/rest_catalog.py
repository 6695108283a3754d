"""Iceberg REST catalog clients: one-line errors that name the catalog, and OAuth2 tokens for other tools."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import requests
from requests.adapters import HTTPAdapter

from components.core.settings import CATALOG_CLIENT_ID, CATALOG_CLIENT_SECRET, Settings, scoped_environ

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

#: Where Feast's Iceberg source finds the catalog's bearer token (see `catalog_token_environ`).
TOKEN_VARIABLE = "LAKEHOUSE_CATALOG_TOKEN"


class CatalogUnavailable(requests.exceptions.ConnectionError):
    """The catalog did not answer, or refused the client's credentials; the message names its URI."""


def _reason(exc: BaseException) -> str:
    """The innermost OS-level cause of a connection failure (e.g. `Connection refused`)."""
    pending, seen = [exc], set()
    while pending:
        error = pending.pop(0)
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, OSError) and error.strerror:
            return error.strerror
        linked = [*error.args, getattr(error, "reason", None), error.__cause__, error.__context__]
        pending += [link for link in linked if isinstance(link, BaseException)]
    return type(exc).__name__


def _unreachable(settings: Settings, exc: BaseException) -> CatalogUnavailable:
    return CatalogUnavailable(f"Iceberg catalog at {settings.catalog_uri} is unreachable ({_reason(exc)})")


class _NamedFailures(HTTPAdapter):
    """Turns a failed connection to the catalog into one line naming the catalog and the request."""

    def __init__(self, catalog_uri: str) -> None:
        super().__init__()
        self.catalog_uri = catalog_uri

    def send(self, request, **kwargs):  # noqa: ANN001, ANN201 - requests' signature
        try:
            return super().send(request, **kwargs)
        except requests.exceptions.ConnectionError as exc:
            path = request.path_url.split("?", 1)[0]
            raise CatalogUnavailable(
                f"Iceberg catalog at {self.catalog_uri} is unreachable ({_reason(exc)}) "
                f"during {request.method} {path}"
            ) from exc


def load_rest_catalog(settings: Settings) -> Catalog:
    """pyiceberg's REST catalog for the profile, failing with one line that names the catalog's URI.

    Raises:
        CatalogUnavailable: the catalog does not answer, or refuses the OAuth2 client.
    """
    from pyiceberg.catalog.rest import RestCatalog
    from pyiceberg.exceptions import ForbiddenError, OAuthError, UnauthorizedError

    class NamedRestCatalog(RestCatalog):
        def _create_session(self) -> requests.Session:
            session = super()._create_session()
            session.mount(settings.catalog_uri, _NamedFailures(settings.catalog_uri))
            return session

    props = settings.catalog_properties()
    try:
        return NamedRestCatalog(settings.catalog_name, **props)
    except CatalogUnavailable:
        raise
    except requests.exceptions.ConnectionError as exc:  # the token request, sent before any other
        raise _unreachable(settings, exc) from None
    except (OAuthError, UnauthorizedError, ForbiddenError) as exc:
        client = os.environ.get(CATALOG_CLIENT_ID) or "(LAKEHOUSE_CATALOG_CLIENT_ID not set)"
        raise CatalogUnavailable(
            f"Iceberg catalog at {settings.catalog_uri} refused OAuth2 client {client} ({exc}): check "
            f"{CATALOG_CLIENT_ID}/{CATALOG_CLIENT_SECRET}"
        ) from None


def fetch_token(settings: Settings) -> str:
    """A bearer token from the catalog's OAuth2 endpoint (the settings' client credentials).

    Raises:
        CatalogUnavailable: no answer, or the credentials are refused (the message names the endpoint).
    """
    url = settings.catalog_properties()["oauth2-server-uri"]
    form = {
        "grant_type": "client_credentials",
        "client_id": settings.credential(CATALOG_CLIENT_ID) or "",
        "client_secret": settings.credential(CATALOG_CLIENT_SECRET) or "",
    }
    if settings.catalog_scope:
        form["scope"] = settings.catalog_scope
    try:
        answer = requests.post(url, data=form, timeout=30)
    except requests.exceptions.ConnectionError as exc:
        raise _unreachable(settings, exc) from None
    if answer.status_code != 200:
        raise CatalogUnavailable(
            f"Iceberg catalog at {settings.catalog_uri} refused a token ({answer.status_code}: "
            f"{answer.text[:200]}): check {CATALOG_CLIENT_ID}/{CATALOG_CLIENT_SECRET}"
        )
    return answer.json()["access_token"]


@contextmanager
def catalog_token_environ(settings: Settings) -> Iterator[None]:
    """Put a fresh catalog token in LAKEHOUSE_CATALOG_TOKEN for a block (REST catalogs with a client only).

    Feast reads its Iceberg source through pyiceberg with the source's stored properties, which never hold
    the client secret; the source names this variable, and pyiceberg sends its token.
    """
    if settings.catalog_type != "rest" or not settings.credential(CATALOG_CLIENT_SECRET):
        yield
        return
    with scoped_environ({TOKEN_VARIABLE: fetch_token(settings)}):
        yield
