with

source as (

    select * from {{ source('bronze', 'customers') }}

),

renamed as (

    select
        cast(customer_id as bigint) as customer_id,
        {{ clean_email('email') }} as email,
        trim(first_name) as first_name,
        trim(last_name) as last_name,
        {{ title_case('city') }} as city,
        trim(country) as country,
        lower(trim(loyalty_tier)) as loyalty_tier,
        cast(signup_at as {{ type_timestamp_us() }}) as signup_at,
        cast(updated_at as {{ type_timestamp_us() }}) as updated_at,
        {{ bronze_load_id(source('bronze', 'customers')) }} as dlt_load_id

    from source

    where customer_id is not null
        and updated_at is not null

),

ranked as (

    select
        *,
        row_number() over (
            partition by customer_id, updated_at
            order by dlt_load_id desc
        ) as row_rank

    from renamed

),

final as (

    select
        customer_id,
        email,
        first_name,
        last_name,
        city,
        country,
        loyalty_tier,
        signup_at,
        updated_at,
        dlt_load_id

    from ranked

    where row_rank = 1

)

select * from final
