with

source as (

    select * from {{ source('bronze', 'orders') }}

),

renamed as (

    select
        cast(order_id as bigint) as order_id,
        cast(customer_id as bigint) as customer_id,
        cast(store_id as bigint) as store_id,
        cast(ordered_at as {{ type_timestamp_us() }}) as ordered_at,
        lower(trim(status)) as status,
        cast(updated_at as {{ type_timestamp_us() }}) as updated_at,
        {{ bronze_load_id(source('bronze', 'orders')) }} as dlt_load_id

    from source

    where order_id is not null

),

{#- A late arrival is a newer version of an order (updated_at after the first load): keep the newest. -#}
ranked as (

    select
        *,
        row_number() over (
            partition by order_id
            order by updated_at desc, dlt_load_id desc
        ) as row_rank

    from renamed

),

final as (

    select
        order_id,
        customer_id,
        store_id,
        ordered_at,
        status,
        status = 'cancelled' as is_cancelled,
        updated_at,
        dlt_load_id

    from ranked

    where row_rank = 1

)

select * from final
