{{ config(unique_key='order_sk') }}

with

orders as (

    select * from {{ ref('stg_orders') }}

),

order_items as (

    select * from {{ ref('fct_order_items') }}

),

customers as (

    select * from {{ ref('dim_customer') }}

),

stores as (

    select * from {{ ref('dim_store') }}

),

dates as (

    select * from {{ ref('dim_date') }}

),

order_amounts as (

    select
        order_id,
        count(*) as item_count,
        cast(sum(quantity) as bigint) as unit_count,
        cast(sum(gross_cents) as bigint) as gross_cents,
        cast(sum(discount_cents) as bigint) as discount_cents,
        cast(sum(net_cents) as bigint) as net_cents,
        max(updated_at) as items_updated_at,
        max(dlt_load_id) as items_load_id

    from order_items

    group by order_id

),

{#- When a customer's history last changed: a late version can move an order to another customer row. -#}
customer_loads as (

    select
        customer_id,
        max(dlt_load_id) as customer_load_id

    from customers

    group by customer_id

),

{#- The fact's updated_at is the newest of the order and its lines; it is rebuilt when the order, one of its
    lines or its customer's history was loaded since the table's last build. -#}
orders_with_amounts as (

    select
        orders.order_id,
        orders.customer_id,
        orders.store_id,
        orders.ordered_at,
        orders.status,
        orders.is_cancelled,
        order_amounts.item_count,
        order_amounts.unit_count,
        order_amounts.gross_cents,
        order_amounts.discount_cents,
        order_amounts.net_cents,
        {{ later_of('order_amounts.items_updated_at', 'orders.updated_at') }} as fact_updated_at,
        {{ later_of('customer_loads.customer_load_id', later_of('order_amounts.items_load_id', 'orders.dlt_load_id')) }}
            as dlt_load_id

    from orders

    left join order_amounts
        on orders.order_id = order_amounts.order_id

    left join customer_loads
        on orders.customer_id = customer_loads.customer_id

),

changed_orders as (

    select * from orders_with_amounts

    {% if is_incremental() %}
    where {{ loaded_since_last_build('dlt_load_id') }}
    {% endif %}

),

{#- The customer version valid when the order was placed (SCD2 point-in-time join). -#}
final as (

    select
        {{ generate_surrogate_key(['changed_orders.order_id']) }} as order_sk,
        changed_orders.order_id,
        customers.customer_sk,
        changed_orders.customer_id,
        stores.store_sk,
        changed_orders.store_id,
        dates.date_key as order_date_key,
        changed_orders.ordered_at,
        changed_orders.status,
        changed_orders.is_cancelled,
        coalesce(changed_orders.item_count, 0) as item_count,
        coalesce(changed_orders.unit_count, 0) as unit_count,
        coalesce(changed_orders.net_cents, 0) as net_cents,
        {{ cents_to_amount('coalesce(changed_orders.gross_cents, 0)') }} as gross_amount,
        {{ cents_to_amount('coalesce(changed_orders.discount_cents, 0)') }} as discount_amount,
        {{ cents_to_amount('coalesce(changed_orders.net_cents, 0)') }} as net_amount,
        changed_orders.fact_updated_at as updated_at,
        changed_orders.dlt_load_id

    from changed_orders

    left join customers
        on changed_orders.customer_id = customers.customer_id
        and changed_orders.ordered_at >= customers.valid_from
        and (customers.valid_to is null or changed_orders.ordered_at < customers.valid_to)

    left join stores
        on changed_orders.store_id = stores.store_id

    left join dates
        on cast(changed_orders.ordered_at as date) = dates.date_day

)

select * from final
