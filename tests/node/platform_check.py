"""Run inside a pod of the platform image with a pipeline step's environment (the `cluster` profile, the
pipeline's catalog client, the platform's S3 keys): what the steps do first, against the node's services.

Writes table `node_check.numbers` through the REST catalog with pyiceberg, reads it back through Trino (a
second engine, a second catalog client), and asks MLflow for its experiments. Prints one JSON line."""

from __future__ import annotations

import json
import urllib.request

import pyarrow as pa
import trino

from components.core.catalog import get_catalog
from components.core.settings import get_settings

settings = get_settings("cluster")
catalog = get_catalog(settings)
catalog.create_namespace_if_not_exists("node_check")
if catalog.table_exists("node_check.numbers"):
    catalog.drop_table("node_check.numbers")
numbers = pa.table({"n": pa.array([1, 2, 3], pa.int64())})
table = catalog.create_table("node_check.numbers", schema=numbers.schema)
table.append(numbers)
connection = trino.dbapi.connect(
    host=settings.trino_host, port=int(settings.trino_port), user=settings.trino_user, catalog="lakehouse"
)
cursor = connection.cursor()
cursor.execute("SELECT count(*), sum(n) FROM node_check.numbers")
count, total = cursor.fetchone()
request = urllib.request.Request(
    f"{settings.mlflow_tracking_uri}/api/2.0/mlflow/experiments/search?max_results=1",
    headers={"Host": "mlflow:5000"},
)
with urllib.request.urlopen(request, timeout=30) as answer:
    experiments = json.load(answer).get("experiments", [])
print(
    json.dumps(
        {
            "rows": count,
            "sum": total,
            "snapshot": table.metadata.current_snapshot_id,
            "mlflow_experiments": len(experiments),
        }
    )
)
