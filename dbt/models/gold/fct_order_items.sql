{{ config(unique_key='order_item_sk') }}

with

order_items as (

    select * from {{ ref('stg_order_items') }}

),

orders as (

    select * from {{ ref('stg_orders') }}

),

products as (

    select * from {{ ref('dim_product') }}

),

{#- A line changes with its order: its updated_at is the newer of the two, so a late order brings its lines.
    It is rebuilt when it, its order or its product was loaded since the table's last build (a product that
    arrives late gives its lines their product key and list price). -#}
lines as (

    select
        order_items.order_item_id,
        order_items.order_id,
        order_items.product_id,
        order_items.quantity,
        order_items.unit_price_cents,
        order_items.discount_cents,
        products.product_sk,
        products.list_price_cents,
        {{ later_of('orders.updated_at', 'order_items.updated_at') }} as updated_at,
        {{ later_of('products.dlt_load_id', later_of('orders.dlt_load_id', 'order_items.dlt_load_id')) }}
            as dlt_load_id

    from order_items

    left join orders
        on order_items.order_id = orders.order_id

    left join products
        on order_items.product_id = products.product_id

),

changed_items as (

    select * from lines

    {% if is_incremental() %}
    where {{ loaded_since_last_build('dlt_load_id') }}
    {% endif %}

),

{#- A line exported without a unit price is priced at the product's list price. -#}
priced as (

    select
        *,
        coalesce(unit_price_cents, list_price_cents) as effective_unit_price_cents,
        unit_price_cents is null as is_price_imputed

    from changed_items

),

{#- Amounts are summed in whole cents, so aggregates are exact and the same on every run. -#}
line_amounts as (

    select
        *,
        quantity * effective_unit_price_cents as gross_cents,
        quantity * effective_unit_price_cents - discount_cents as net_cents

    from priced

),

final as (

    select
        {{ generate_surrogate_key(['order_item_id']) }} as order_item_sk,
        order_item_id,
        {{ generate_surrogate_key(['order_id']) }} as order_sk,
        order_id,
        product_sk,
        product_id,
        quantity,
        effective_unit_price_cents as unit_price_cents,
        is_price_imputed,
        discount_cents,
        gross_cents,
        net_cents,
        {{ cents_to_amount('gross_cents') }} as gross_amount,
        {{ cents_to_amount('discount_cents') }} as discount_amount,
        {{ cents_to_amount('net_cents') }} as net_amount,
        updated_at,
        dlt_load_id

    from line_amounts

)

select * from final
