{#- One row per customer per weekly as-of date; every feature only sees orders placed before as_of_ts. -#}

with

customers as (

    select * from {{ ref('dim_customer') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

order_items as (

    select * from {{ ref('fct_order_items') }}

),

products as (

    select * from {{ ref('dim_product') }}

),

active_orders as (

    select
        order_sk,
        customer_id,
        ordered_at,
        net_cents

    from orders

    where not is_cancelled

),

{#- Weekly as-of dates from a fixed anchor (first order date + warm-up) up to the last order date. -#}
as_of_bounds as (

    select
        {{ add_days('cast(min(ordered_at) as date)', var('feature_warmup_days')) }} as first_as_of_date,
        cast(max(ordered_at) as date) as last_order_date

    from orders

),

as_of_dates as (

    {{ date_series('as_of_bounds', 'first_as_of_date', 'last_order_date', var('feature_step_days')) }}

),

customer_as_of as (

    select
        customers.customer_id,
        customers.signup_at,
        cast(as_of_dates.date_day as {{ type_timestamp_us() }}) as as_of_ts

    from customers

    cross join as_of_dates

    where customers.is_current
        and customers.signup_at <= cast(as_of_dates.date_day as {{ type_timestamp_us() }})

),

{#-
    Order activity before each as-of date, without joining every order to every later as-of date: the
    orders of a customer per day and the customer's as-of dates form one timeline, and window sums over the
    days before each as-of date add them up. `ordered_at < as_of_ts` is `day < as-of day` (as-of dates are
    midnights), and `ordered_at >= as_of_ts - N days` is `day >= as-of day - N`.
-#}
order_days as (

    select
        customer_id,
        {{ day_number('ordered_at') }} as day_number,
        count(*) as orders,
        sum(net_cents) as net_cents,
        max(ordered_at) as last_ordered_at

    from active_orders

    group by
        customer_id,
        {{ day_number('ordered_at') }}

),

activity_timeline as (

    select
        customer_id,
        day_number,
        orders,
        net_cents,
        last_ordered_at,
        cast(null as {{ type_timestamp_us() }}) as as_of_ts

    from order_days

    union all

    select
        customer_id,
        {{ day_number('as_of_ts') }} as day_number,
        cast(null as bigint) as orders,
        cast(null as bigint) as net_cents,
        cast(null as {{ type_timestamp_us() }}) as last_ordered_at,
        as_of_ts

    from customer_as_of

),

activity_windows as (

    select
        customer_id,
        as_of_ts,
        {{ days_before('max', 'last_ordered_at') }} as last_ordered_at,
        {{ days_before('sum', 'orders') }} as orders_before,
        {{ days_before('sum', 'net_cents') }} as cents_before,
        {{ days_before('sum', 'orders', 7) }} as orders_7d,
        {{ days_before('sum', 'orders', 30) }} as orders_30d,
        {{ days_before('sum', 'orders', 90) }} as orders_90d,
        {{ days_before('sum', 'net_cents', 7) }} as spend_7d_cents,
        {{ days_before('sum', 'net_cents', 30) }} as spend_30d_cents,
        {{ days_before('sum', 'net_cents', 90) }} as spend_90d_cents

    from activity_timeline

),

order_activity as (

    select
        customer_id,
        as_of_ts,
        last_ordered_at,
        cast(cents_before as double) / nullif(orders_before, 0) as avg_order_cents,
        coalesce(orders_7d, 0) as orders_7d,
        coalesce(orders_30d, 0) as orders_30d,
        coalesce(orders_90d, 0) as orders_90d,
        coalesce(spend_7d_cents, 0) as spend_7d_cents,
        coalesce(spend_30d_cents, 0) as spend_30d_cents,
        coalesce(spend_90d_cents, 0) as spend_90d_cents

    from activity_windows

    where as_of_ts is not null

),

{#- Spend per category in the 90 days before each as-of date: each day's spend counts for the as-of dates of
    the 90 days after it (the as-of dates are few, the join is on their day numbers). -#}
category_days as (

    select
        active_orders.customer_id,
        products.category,
        {{ day_number('active_orders.ordered_at') }} as day_number,
        sum(order_items.net_cents) as category_cents

    from active_orders

    inner join order_items
        on active_orders.order_sk = order_items.order_sk

    inner join products
        on order_items.product_sk = products.product_sk

    group by
        active_orders.customer_id,
        products.category,
        {{ day_number('active_orders.ordered_at') }}

),

as_of_days as (

    select
        cast(date_day as {{ type_timestamp_us() }}) as as_of_ts,
        {{ day_number('date_day') }} as day_number

    from as_of_dates

),

category_spend_90d as (

    select
        category_days.customer_id,
        as_of_days.as_of_ts,
        category_days.category,
        sum(category_days.category_cents) as category_cents

    from category_days

    inner join as_of_days
        on as_of_days.day_number between category_days.day_number + 1 and category_days.day_number + 90

    group by
        category_days.customer_id,
        as_of_days.as_of_ts,
        category_days.category

),

category_mix_90d as (

    select
        customer_id,
        as_of_ts,
        count(*) as distinct_categories_90d,
        sum(category_cents) as total_cents,
        max(category_cents) as top_category_cents

    from category_spend_90d

    group by
        customer_id,
        as_of_ts

),

{#- The loyalty tier of the customer version valid at as_of_ts. -#}
loyalty_as_of as (

    select
        customer_as_of.customer_id,
        customer_as_of.as_of_ts,
        customers.loyalty_tier,
        customers.loyalty_tier_rank

    from customer_as_of

    inner join customers
        on customer_as_of.customer_id = customers.customer_id
        and customers.valid_from <= customer_as_of.as_of_ts
        and (customers.valid_to is null or customer_as_of.as_of_ts < customers.valid_to)

),

final as (

    select
        cast(customer_as_of.customer_id as bigint) as customer_id,
        customer_as_of.as_of_ts,
        cast({{ days_between('order_activity.last_ordered_at', 'customer_as_of.as_of_ts') }} as double)
            as recency_days,
        cast(order_activity.orders_7d as bigint) as orders_7d,
        cast(order_activity.orders_30d as bigint) as orders_30d,
        cast(order_activity.orders_90d as bigint) as orders_90d,
        {{ cents_to_amount('order_activity.spend_7d_cents') }} as spend_7d_amount,
        {{ cents_to_amount('order_activity.spend_30d_cents') }} as spend_30d_amount,
        {{ cents_to_amount('order_activity.spend_90d_cents') }} as spend_90d_amount,
        {{ cents_to_amount('order_activity.avg_order_cents') }} as avg_order_amount,
        cast(floor({{ days_between('customer_as_of.signup_at', 'customer_as_of.as_of_ts') }}) as bigint)
            as tenure_days,
        cast(coalesce(category_mix_90d.distinct_categories_90d, 0) as bigint) as distinct_categories_90d,
        cast(
            case
                when category_mix_90d.total_cents > 0
                    then cast(category_mix_90d.top_category_cents as double)
                        / cast(category_mix_90d.total_cents as double)
            end
            as double
        ) as top_category_share_90d,
        cast(loyalty_as_of.loyalty_tier as varchar) as loyalty_tier,
        cast(loyalty_as_of.loyalty_tier_rank as bigint) as loyalty_tier_rank

    from customer_as_of

    inner join order_activity
        on customer_as_of.customer_id = order_activity.customer_id
        and customer_as_of.as_of_ts = order_activity.as_of_ts

    left join category_mix_90d
        on customer_as_of.customer_id = category_mix_90d.customer_id
        and customer_as_of.as_of_ts = category_mix_90d.as_of_ts

    left join loyalty_as_of
        on customer_as_of.customer_id = loyalty_as_of.customer_id
        and customer_as_of.as_of_ts = loyalty_as_of.as_of_ts

)

select * from final
