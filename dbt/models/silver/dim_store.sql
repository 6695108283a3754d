{{ config(unique_key='store_sk') }}

with

stores as (

    select * from {{ ref('stg_stores') }}

),

changed_stores as (

    select * from stores

    {% if is_incremental() %}
    where {{ loaded_since_last_build('dlt_load_id') }}
    {% endif %}

),

final as (

    select
        {{ generate_surrogate_key(['store_id']) }} as store_sk,
        store_id,
        store_name,
        city,
        country,
        channel,
        channel = 'online' as is_online,
        opened_at,
        updated_at,
        dlt_load_id

    from changed_stores

)

select * from final
