{{ config(unique_key='product_sk') }}

with

products as (

    select * from {{ ref('stg_products') }}

),

changed_products as (

    select * from products

    {% if is_incremental() %}
    where {{ loaded_since_last_build('dlt_load_id') }}
    {% endif %}

),

final as (

    select
        {{ generate_surrogate_key(['product_id']) }} as product_sk,
        product_id,
        product_name,
        category,
        brand,
        list_price_cents,
        {{ cents_to_amount('list_price_cents') }} as list_price_amount,
        created_at,
        updated_at,
        dlt_load_id

    from changed_products

)

select * from final
