with

source as (

    select * from {{ source('bronze', 'order_items') }}

),

renamed as (

    select
        cast(order_item_id as bigint) as order_item_id,
        cast(order_id as bigint) as order_id,
        cast(product_id as bigint) as product_id,
        cast(quantity as bigint) as quantity,
        cast(unit_price_cents as bigint) as unit_price_cents,
        cast(coalesce(discount_cents, 0) as bigint) as discount_cents,
        cast(updated_at as {{ type_timestamp_us() }}) as updated_at,
        {{ bronze_load_id(source('bronze', 'order_items')) }} as dlt_load_id

    from source

    where order_item_id is not null

),

ranked as (

    select
        *,
        row_number() over (
            partition by order_item_id
            order by updated_at desc, dlt_load_id desc
        ) as row_rank

    from renamed

),

{#- Lines whose newest version has no positive quantity are not sales: they are dropped here. -#}
final as (

    select
        order_item_id,
        order_id,
        product_id,
        quantity,
        unit_price_cents,
        discount_cents,
        updated_at,
        dlt_load_id

    from ranked

    where row_rank = 1
        and quantity > 0

)

select * from final
