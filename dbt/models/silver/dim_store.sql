{{ config(unique_key='store_sk') }}

with

stores as (

    select * from {{ ref('stg_stores') }}

),

changed_stores as (

    select * from stores

    {% if is_incremental() %}
    where updated_at > (select max(updated_at) from {{ this }})
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
        updated_at

    from changed_stores

)

select * from final
