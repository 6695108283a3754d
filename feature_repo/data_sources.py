"""Feast batch sources: gold Iceberg tables read through the lakehouse catalog."""

from feast.infra.data_sources.contrib.iceberg_catalog.iceberg_source import IcebergSource

from components.settings import GOLD, Settings, get_settings


def customer_features_source_from(settings: Settings) -> IcebergSource:
    """The weekly as-of customer feature mart `gold.customer_features` in the profile's catalog.

    The catalog is always loaded under the name `lakehouse`: the SQL catalog stores that name in each row.
    The source keeps the S3 endpoint, region and addressing style (stored in the Feast registry), never the
    keys: pyarrow's S3 client reads those from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY when it scans.
    """
    extra = settings.s3_properties(credentials=False)
    return IcebergSource(
        name="customer_features_source",
        catalog_type=settings.catalog_type,
        catalog_name=settings.catalog_name,
        endpoint=settings.catalog_uri,
        warehouse=settings.warehouse,
        namespace=GOLD,
        table="customer_features",
        catalog_properties=extra,
        timestamp_field="as_of_ts",
        description="One row per customer per weekly as-of date (midnight UTC), written by dbt.",
        tags={"layer": GOLD, "table": f"{GOLD}.customer_features"},
        owner="lakehouse",
    )


customer_features_source = customer_features_source_from(get_settings())
