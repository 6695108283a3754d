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


{#- Surrogate key in the manner of dbt_utils: md5 over the null-coalesced string casts of the fields. -#}
{% macro generate_surrogate_key(field_list) -%}
    {{ return(adapter.dispatch('generate_surrogate_key', 'lakehouse_analytics')(field_list)) }}
{%- endmacro %}

{% macro default__generate_surrogate_key(field_list) -%}
    {%- set fields = [] -%}
    {%- for field in field_list -%}
        {%- do fields.append(
            "coalesce(cast(" ~ field ~ " as varchar), '_dbt_utils_surrogate_key_null_')"
        ) -%}
        {%- if not loop.last -%}
            {%- do fields.append("'-'") -%}
        {%- endif -%}
    {%- endfor -%}
    {{ hash_md5(fields | join(' || ')) }}
{%- endmacro %}
