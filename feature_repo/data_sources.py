"""Feast batch sources: gold Iceberg tables read through the lakehouse catalog."""

from feast.infra.data_sources.contrib.iceberg_catalog.iceberg_source import IcebergSource

from components.core.rest_catalog import TOKEN_VARIABLE
from components.core.settings import GOLD, Settings, get_settings


def customer_features_source_from(settings: Settings) -> IcebergSource:
    """The weekly as-of customer feature mart `gold.customer_features` in the profile's catalog.

    The catalog is always loaded under the name `lakehouse`: the SQL catalog stores that name in each row.
    The source keeps the catalog's properties without any secret (they are stored in the Feast registry):
    the S3 endpoint, region and addressing style, and for a REST catalog its token endpoint, scope and
    access-delegation header. pyarrow's S3 client reads the keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY;
    a REST catalog's bearer token is read from LAKEHOUSE_CATALOG_TOKEN (`catalog_token_environ`).

    Feast sends `catalog_type="rest"` sources through its own REST client, which takes no catalog properties
    and always asks for vended credentials; any other type goes through pyiceberg's `load_catalog` with the
    properties, whose `type` wins. So a REST catalog is named `pyiceberg-rest` here and `rest` in them.
    """
    stored = settings.catalog_properties(credentials=False)
    for key in ("uri", "warehouse"):
        stored.pop(key)
    rest = settings.catalog_type == "rest"
    return IcebergSource(
        name="customer_features_source",
        catalog_type="pyiceberg-rest" if rest else settings.catalog_type,
        catalog_name=settings.catalog_name,
        endpoint=settings.catalog_uri,
        warehouse=settings.warehouse,
        namespace=GOLD,
        table="customer_features",
        catalog_properties=stored,
        token_env_var=TOKEN_VARIABLE if rest else None,
        timestamp_field="as_of_ts",
        description="One row per customer per weekly as-of date (midnight UTC), written by dbt.",
        tags={"layer": GOLD, "table": f"{GOLD}.customer_features"},
        owner="lakehouse",
    )


customer_features_source = customer_features_source_from(get_settings())
