with

source as (

    select * from {{ source('bronze', 'stores') }}

),

renamed as (

    select
        cast(store_id as bigint) as store_id,
        trim(store_name) as store_name,
        {{ title_case('city') }} as city,
        trim(country) as country,
        lower(trim(channel)) as channel,
        cast(opened_at as {{ type_timestamp_us() }}) as opened_at,
        cast(updated_at as {{ type_timestamp_us() }}) as updated_at,
        {{ bronze_load_id(source('bronze', 'stores')) }} as dlt_load_id

    from source

    where store_id is not null

),

ranked as (

    select
        *,
        row_number() over (
            partition by store_id
            order by updated_at desc, dlt_load_id desc
        ) as row_rank

    from renamed

),

final as (

    select
        store_id,
        store_name,
        city,
        country,
        channel,
        opened_at,
        updated_at,
        dlt_load_id

    from ranked

    where row_rank = 1

)

select * from final
