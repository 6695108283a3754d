"""Feast entities of the lakehouse: the customer whose churn propensity is predicted."""

from feast import Entity, ValueType

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="A customer of the shop, keyed by the CRM customer_id.",
    tags={"layer": "gold", "domain": "customer"},
    owner="lakehouse",
)
