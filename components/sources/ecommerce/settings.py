"""Constants of the e-commerce source: its tables, their primary keys and column types."""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us")

#: Column types of each source file, in file order.
COLUMNS: dict[str, dict[str, pa.DataType]] = {
    "customers": {
        "customer_id": pa.int64(),
        "email": pa.string(),
        "first_name": pa.string(),
        "last_name": pa.string(),
        "city": pa.string(),
        "country": pa.string(),
        "loyalty_tier": pa.string(),
        "signup_at": TS,
        "updated_at": TS,
    },
    "products": {
        "product_id": pa.int64(),
        "product_name": pa.string(),
        "category": pa.string(),
        "brand": pa.string(),
        "list_price_cents": pa.int64(),
        "created_at": TS,
        "updated_at": TS,
    },
    "stores": {
        "store_id": pa.int64(),
        "store_name": pa.string(),
        "city": pa.string(),
        "country": pa.string(),
        "channel": pa.string(),
        "opened_at": TS,
        "updated_at": TS,
    },
    "orders": {
        "order_id": pa.int64(),
        "customer_id": pa.int64(),
        "store_id": pa.int64(),
        "ordered_at": TS,
        "status": pa.string(),
        "updated_at": TS,
    },
    "order_items": {
        "order_item_id": pa.int64(),
        "order_id": pa.int64(),
        "product_id": pa.int64(),
        "quantity": pa.int64(),
        "unit_price_cents": pa.int64(),
        "discount_cents": pa.int64(),
        "updated_at": TS,
    },
}

#: Merge keys. The customer file is the CRM's change log: one row per version of a customer.
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "updated_at"),
    "products": ("product_id",),
    "stores": ("store_id",),
    "orders": ("order_id",),
    "order_items": ("order_item_id",),
}

#: The timestamp that orders versions of a row: the newest per key wins within one file.
UPDATED_AT = "updated_at"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

#: Bronze column with a hash of each source row's values: what ingestion compares to find new rows.
ROW_HASH = "_row_hash"

#: Prefix of the columns and tables dlt adds itself (`_dlt_load_id`, `_dlt_id`, ...): no source column's.
RESERVED_PREFIX = "_dlt"
