{#- md5 of a string expression as 32 lower-case hex characters. -#}
{% macro hash_md5(expression) -%}
    {{ return(adapter.dispatch('hash_md5', 'lakehouse_analytics')(expression)) }}
{%- endmacro %}

{% macro default__hash_md5(expression) -%}
    md5(cast({{ expression }} as varchar))
{%- endmacro %}

{% macro trino__hash_md5(expression) -%}
    lower(to_hex(md5(to_utf8(cast({{ expression }} as varchar)))))
{%- endmacro %}


{#-
    The text a key field is hashed as, the same on every engine: integers and strings as themselves, dates
    as `yyyy-mm-dd`, timestamps as `yyyy-mm-dd hh:mm:ss` with the fraction of a second only when it is not
    zero and without trailing zeros (DuckDB's rendering). Trino renders a timestamp(6) with all six digits
    (`.000000`), so on Trino any text of exactly that shape is trimmed to it (the type is not visible to a
    macro; the keys here are ids and timestamps). Doubles and decimals render differently per engine: do
    not use them in keys.
-#}
{% macro key_text(expression) -%}
    {{ return(adapter.dispatch('key_text', 'lakehouse_analytics')(expression)) }}
{%- endmacro %}

{% macro default__key_text(expression) -%}
    cast({{ expression }} as varchar)
{%- endmacro %}

{% macro trino__key_text(expression) -%}
    regexp_replace(
        cast({{ expression }} as varchar),
        '^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.0+|(\.\d*?[1-9])0*)$',
        '$1$2'
    )
{%- endmacro %}


{#- Surrogate key in the manner of dbt_utils: md5 over the null-coalesced key texts of the fields. -#}
{% macro generate_surrogate_key(field_list) -%}
    {{ return(adapter.dispatch('generate_surrogate_key', 'lakehouse_analytics')(field_list)) }}
{%- endmacro %}

{% macro default__generate_surrogate_key(field_list) -%}
    {%- set fields = [] -%}
    {%- for field in field_list -%}
        {%- do fields.append(
            "coalesce(" ~ key_text(field) ~ ", '_dbt_utils_surrogate_key_null_')"
        ) -%}
        {%- if not loop.last -%}
            {%- do fields.append("'-'") -%}
        {%- endif -%}
    {%- endfor -%}
    {{ hash_md5(fields | join(' || ')) }}
{%- endmacro %}
