{{
    config(
        unique_key='customer_sk',
        properties={
            'format': "'PARQUET'",
            'partitioning': "ARRAY['month(valid_from)']",
        },
    )
}}

with

customers as (

    select * from {{ ref('stg_customers') }}

),

{#- On an incremental run only customers with a version loaded since the table's last build are rebuilt
    (a new version, a late or backfilled one, a correction); their whole history is recomputed in
    updated_at order, so the rows around a version closed or opened by it are replaced under their keys. -#}
changed_customers as (

    select distinct customer_id

    from customers

    {% if is_incremental() %}
    where {{ loaded_since_last_build('dlt_load_id') }}
    {% endif %}

),

customer_versions as (

    select customers.*

    from customers

    inner join changed_customers
        on customers.customer_id = changed_customers.customer_id

),

sequenced as (

    select
        *,
        row_number() over (partition by customer_id order by updated_at) as version_number,
        lead(updated_at) over (partition by customer_id order by updated_at) as next_updated_at

    from customer_versions

),

{#- The first version holds from signup, so every moment of a customer's life has exactly one row. -#}
validity as (

    select
        *,
        case
            when version_number = 1 and signup_at < updated_at then signup_at
            else updated_at
        end as valid_from,
        next_updated_at as valid_to

    from sequenced

),

final as (

    select
        {{ generate_surrogate_key(['customer_id', 'valid_from']) }} as customer_sk,
        customer_id,
        email,
        first_name,
        last_name,
        city,
        country,
        loyalty_tier,
        case loyalty_tier
            when 'bronze' then 1
            when 'silver' then 2
            when 'gold' then 3
            when 'platinum' then 4
        end as loyalty_tier_rank,
        signup_at,
        version_number,
        valid_from,
        valid_to,
        valid_to is null as is_current,
        updated_at,
        dlt_load_id

    from validity

)

select * from final
