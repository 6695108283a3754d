{#- For sqlfluff: each dispatched macro renders as its Trino implementation (what `adapter.dispatch` picks). -#}
{% macro hash_md5(expression) %}{{ trino__hash_md5(expression) }}{% endmacro %}
{% macro key_text(expression) %}{{ trino__key_text(expression) }}{% endmacro %}
{% macro type_timestamp_us() %}{{ trino__type_timestamp_us() }}{% endmacro %}
{% macro generate_surrogate_key(field_list) %}{{ default__generate_surrogate_key(field_list) }}{% endmacro %}
{% macro add_days(expression, days) %}{{ default__add_days(expression, days) }}{% endmacro %}
{% macro days_between(start, end) %}{{ default__days_between(start, end) }}{% endmacro %}
{% macro iso_day_of_week(expression) %}{{ default__iso_day_of_week(expression) }}{% endmacro %}
{% macro date_series(bounds, start_column, end_column, step_days) %}{{ default__date_series(bounds, start_column, end_column, step_days) }}{% endmacro %}
{% macro title_case(expression) %}{{ default__title_case(expression) }}{% endmacro %}
