{{ config(unique_key='date_key') }}

with

customers as (

    select * from {{ ref('stg_customers') }}

),

orders as (

    select * from {{ ref('stg_orders') }}

),

{#- Every day from the first signup or order to the last order. -#}
bounds as (

    select
        cast(min(first_at) as date) as first_date,
        cast(max(last_at) as date) as last_date

    from (
        select min(signup_at) as first_at, max(signup_at) as last_at from customers
        union all
        select min(ordered_at) as first_at, max(ordered_at) as last_at from orders
    ) as activity

),

days as (

    {{ date_series('bounds', 'first_date', 'last_date', 1) }}

),

{#- A date never changes: an incremental run only adds the days the table does not hold yet. -#}
new_days as (

    select days.date_day

    from days

    {% if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as existing
        where existing.date_day = days.date_day
    )
    {% endif %}

),

final as (

    select
        {{ date_key('date_day') }} as date_key,
        date_day,
        cast(extract(year from date_day) as integer) as year_number,
        cast(extract(quarter from date_day) as integer) as quarter_number,
        cast(extract(month from date_day) as integer) as month_number,
        cast(extract(day from date_day) as integer) as day_of_month,
        cast({{ iso_day_of_week('date_day') }} as integer) as day_of_week,
        cast(extract(week from date_day) as integer) as iso_week_number,
        {{ iso_day_of_week('date_day') }} >= 6 as is_weekend

    from new_days

)

select * from final
