{#- Date arithmetic that differs between engines. -#}

{#- `expression` (date or timestamp) plus `days` whole days (an integer expression, may be negative). -#}
{% macro add_days(expression, days) -%}
    {{ return(adapter.dispatch('add_days', 'lakehouse_analytics')(expression, days)) }}
{%- endmacro %}

{% macro default__add_days(expression, days) -%}
    date_add('day', {{ days }}, {{ expression }})
{%- endmacro %}

{% macro duckdb__add_days(expression, days) -%}
    ({{ expression }} + to_days(cast({{ days }} as integer)))
{%- endmacro %}


{#- Fractional days from timestamp `start` to timestamp `end` (second precision), as a double. -#}
{% macro days_between(start, end) -%}
    {{ return(adapter.dispatch('days_between', 'lakehouse_analytics')(start, end)) }}
{%- endmacro %}

{% macro default__days_between(start, end) -%}
    (cast(date_diff('second', {{ start }}, {{ end }}) as double) / 86400.0)
{%- endmacro %}


{#- Whole days from 1970-01-01 to the date of `expression` (date or timestamp), an integer. -#}
{% macro day_number(expression) -%}
    date_diff('day', date '1970-01-01', cast({{ expression }} as date))
{%- endmacro %}


{#-
    `function` (sum, max, ...) of `column` over the rows of the same customer on the days before this row's
    day: all of them, or the last `days` days only. The rows are ordered by `day_number`.
-#}
{% macro days_before(function, column, days=none) -%}
    {{ function }}({{ column }}) over (
        partition by customer_id
        order by day_number
        range between {{ 'unbounded' if days is none else days }} preceding and 1 preceding
    )
{%- endmacro %}


{#- ISO day of the week: 1 = Monday ... 7 = Sunday. -#}
{% macro iso_day_of_week(expression) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'lakehouse_analytics')(expression)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(expression) -%}
    day_of_week({{ expression }})
{%- endmacro %}

{% macro duckdb__iso_day_of_week(expression) -%}
    isodow({{ expression }})
{%- endmacro %}


{#- Integer key yyyymmdd of a date or timestamp. -#}
{% macro date_key(expression) -%}
    cast(
        extract(year from {{ expression }}) * 10000
        + extract(month from {{ expression }}) * 100
        + extract(day from {{ expression }})
        as integer
    )
{%- endmacro %}


{#-
    A select statement with one column `date_day` (date): every `step_days` days from `start_column` to
    `end_column` (inclusive) of the one-row relation `bounds`; no rows when start is after end or NULL.
-#}
{% macro date_series(bounds, start_column, end_column, step_days=1) -%}
    {{ return(adapter.dispatch('date_series', 'lakehouse_analytics')(bounds, start_column, end_column, step_days)) }}
{%- endmacro %}

{% macro default__date_series(bounds, start_column, end_column, step_days) -%}
    select series.date_day
    from {{ bounds }}
    cross join unnest(
        sequence(
            cast({{ start_column }} as date),
            cast({{ end_column }} as date),
            interval '{{ step_days }}' day
        )
    ) as series (date_day)
    where {{ start_column }} <= {{ end_column }}
{%- endmacro %}

{% macro duckdb__date_series(bounds, start_column, end_column, step_days) -%}
    select cast(series.date_day as date) as date_day
    from {{ bounds }}
    cross join unnest(
        generate_series(
            cast({{ start_column }} as timestamp),
            cast({{ end_column }} as timestamp),
            interval '{{ step_days }}' day
        )
    ) as series (date_day)
    where {{ start_column }} <= {{ end_column }}
{%- endmacro %}


{#- The timestamp type of the models: microsecond precision, as Iceberg stores it. -#}
{% macro type_timestamp_us() -%}
    {{ return(adapter.dispatch('type_timestamp_us', 'lakehouse_analytics')()) }}
{%- endmacro %}

{% macro default__type_timestamp_us() -%}
    timestamp
{%- endmacro %}

{% macro trino__type_timestamp_us() -%}
    timestamp(6)
{%- endmacro %}


{#-
    The later of two timestamps, `fallback` when `candidate` is null (or `fallback` is: then null). Written
    out because `greatest()` treats nulls differently on DuckDB (skips them) and Trino (returns null).
-#}
{% macro later_of(candidate, fallback) -%}
    case when {{ candidate }} > {{ fallback }} then {{ candidate }} else {{ fallback }} end
{%- endmacro %}
