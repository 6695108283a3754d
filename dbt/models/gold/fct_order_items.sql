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

{#- New or changed lines, and every line of an order that changed (a late order brings its lines). -#}
changed_items as (

    select order_items.*

    from order_items

    {% if is_incremental() %}
    left join orders
        on order_items.order_id = orders.order_id

    where order_items.updated_at > (select max(updated_at) from {{ this }})
        or orders.updated_at > (select max(updated_at) from {{ this }})
    {% endif %}

),

{#- A line exported without a unit price is priced at the product's list price. -#}
priced as (

    select
        changed_items.*,
        products.product_sk,
        coalesce(changed_items.unit_price_cents, products.list_price_cents) as effective_unit_price_cents,
        changed_items.unit_price_cents is null as is_price_imputed

    from changed_items

    left join products
        on changed_items.product_id = products.product_id

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
        updated_at

    from line_amounts

)

select * from final
