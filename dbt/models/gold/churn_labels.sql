{#- Churn label per customer and as-of date: no non-cancelled order in (as_of_ts, as_of_ts + window]. -#}

with

features as (

    select * from {{ ref('customer_features') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

last_order as (

    select cast(max(ordered_at) as date) as last_order_date

    from orders

),

{#- Only as-of dates whose whole label window lies inside the data. -#}
labelled_as_of as (

    select
        features.customer_id,
        features.as_of_ts

    from features

    cross join last_order

    where {{ add_days('cast(features.as_of_ts as date)', var('churn_window_days')) }}
        <= last_order.last_order_date

),

future_orders as (

    select
        labelled_as_of.customer_id,
        labelled_as_of.as_of_ts,
        count(orders.order_sk) as orders_in_window

    from labelled_as_of

    left join orders
        on labelled_as_of.customer_id = orders.customer_id
        and not orders.is_cancelled
        and orders.ordered_at > labelled_as_of.as_of_ts
        and orders.ordered_at <= {{ add_days('labelled_as_of.as_of_ts', var('churn_window_days')) }}

    group by
        labelled_as_of.customer_id,
        labelled_as_of.as_of_ts

),

final as (

    select
        cast(customer_id as bigint) as customer_id,
        as_of_ts,
        orders_in_window = 0 as is_churned

    from future_orders

)

select * from final
