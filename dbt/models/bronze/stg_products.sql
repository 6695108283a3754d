with

source as (

    select * from {{ source('bronze', 'products') }}

),

renamed as (

    select
        cast(product_id as bigint) as product_id,
        trim(product_name) as product_name,
        lower(trim(category)) as category,
        trim(brand) as brand,
        cast(list_price_cents as bigint) as list_price_cents,
        cast(created_at as {{ type_timestamp_us() }}) as created_at,
        cast(updated_at as {{ type_timestamp_us() }}) as updated_at,
        {{ bronze_load_id(source('bronze', 'products')) }} as dlt_load_id

    from source

    where product_id is not null

),

ranked as (

    select
        *,
        row_number() over (
            partition by product_id
            order by updated_at desc, dlt_load_id desc
        ) as row_rank

    from renamed

),

final as (

    select
        product_id,
        product_name,
        category,
        brand,
        list_price_cents,
        created_at,
        updated_at,
        dlt_load_id

    from ranked

    where row_rank = 1

)

select * from final
