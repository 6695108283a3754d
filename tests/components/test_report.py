"""The run report's data volumes: rows per table at the snapshot a step recorded."""

from __future__ import annotations

import pyarrow as pa

from components.core.catalog import get_catalog, snapshot_ids
from components.reporting.report import layer_volumes


def test_volumes_are_read_at_the_recorded_snapshot_and_a_dropped_table_has_none(settings):
    catalog = get_catalog(settings)
    catalog.create_namespace_if_not_exists("bronze")
    rows = pa.table({"id": pa.array([1, 2, 3], pa.int64())})
    orders = catalog.create_table("bronze.orders", schema=rows.schema)
    orders.append(rows)
    scratch = catalog.create_table("bronze.orders__dbt_tmp", schema=rows.schema)
    scratch.append(rows)
    recorded = snapshot_ids("bronze", settings)
    orders.append(rows)  # a later commit: the report shows the recorded one
    catalog.drop_table("bronze.orders__dbt_tmp")  # dropped after a step recorded it

    volumes = layer_volumes(settings, recorded)
    assert volumes == [
        {"table": "bronze.orders", "rows": 3, "snapshot_id": recorded["bronze.orders"]},
        {"table": "bronze.orders__dbt_tmp", "rows": None, "snapshot_id": recorded["bronze.orders__dbt_tmp"]},
    ]
