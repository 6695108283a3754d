"""Shared lakehouse helpers: the Iceberg catalog, table reads and snapshot ids."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from components.core.settings import Settings, get_settings

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog


def get_catalog(settings: Settings | None = None) -> Catalog:
    """Load the profile's Iceberg catalog, always under the same name (dlt stores it in each row).

    A REST catalog that does not answer, or refuses the OAuth2 client, fails with one line naming its URI
    (`components.core.rest_catalog.CatalogUnavailable`), then and at any later request.
    """
    from pyiceberg.catalog import load_catalog

    settings = settings or get_settings()
    settings.ensure_dirs()
    if settings.catalog_type == "rest":
        from components.core.rest_catalog import load_rest_catalog

        return load_rest_catalog(settings)
    return load_catalog(settings.catalog_name, **settings.catalog_properties())


def read_table(identifier: str, settings: Settings | None = None) -> pa.Table:
    """Read a whole Iceberg table (`namespace.name`) as Arrow."""
    return get_catalog(settings).load_table(identifier).scan().to_arrow()


def read_columns(
    identifier: str, columns: Sequence[str], settings: Settings | None = None
) -> pa.Table | None:
    """Read `columns` of an Iceberg table, or None when the table or one of the columns does not exist."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    try:
        table = get_catalog(settings).load_table(identifier)
    except (NoSuchTableError, NoSuchNamespaceError):
        return None
    if not set(columns) <= set(table.schema().column_names):
        return None
    return table.scan(selected_fields=tuple(columns)).to_arrow()


def snapshot_ids(
    namespace: str, settings: Settings | None = None, names: Collection[str] | None = None
) -> dict[str, int | None]:
    """Current snapshot id of every table in `namespace`, or of those of them named in `names` (None for a
    table with no snapshot). Naming them leaves out what else an engine keeps there, such as the scratch
    tables of a dbt build that was stopped."""
    catalog = get_catalog(settings)
    if (namespace,) not in {tuple(ns) for ns in catalog.list_namespaces()}:
        return {}
    ids: dict[str, int | None] = {}
    for ident in sorted(catalog.list_tables(namespace)):
        if names is not None and ident[-1] not in names:
            continue
        snap = catalog.load_table(ident).current_snapshot()
        ids[".".join(ident)] = snap.snapshot_id if snap else None
    return ids
