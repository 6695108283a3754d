{#- Text cleaning that differs between engines. -#}

{#- Trimmed, inner whitespace collapsed, each word capitalised: `  bERLIN ` -> `Berlin`. -#}
{% macro title_case(expression) -%}
    {{ return(adapter.dispatch('title_case', 'lakehouse_analytics')(expression)) }}
{%- endmacro %}

{% macro default__title_case(expression) -%}
    array_join(
        transform(
            split(regexp_replace(trim({{ expression }}), '\s+', ' '), ' '),
            word -> upper(substr(word, 1, 1)) || lower(substr(word, 2))
        ),
        ' '
    )
{%- endmacro %}

{% macro duckdb__title_case(expression) -%}
    array_to_string(
        list_transform(
            string_split(regexp_replace(trim({{ expression }}), '\s+', ' ', 'g'), ' '),
            lambda word: upper(substr(word, 1, 1)) || lower(substr(word, 2))
        ),
        ' '
    )
{%- endmacro %}


{#- Lower-cased, trimmed e-mail address; NULL unless it has one `@` with text on both sides, a dot in the
    domain and no whitespace. -#}
{% macro clean_email(expression) -%}
    case
        when {{ expression }} is null then null
        when lower(trim({{ expression }})) like '% %' then null
        when length(lower(trim({{ expression }})))
            - length(replace(lower(trim({{ expression }})), '@', '')) <> 1 then null
        when lower(trim({{ expression }})) not like '_%@_%._%' then null
        else lower(trim({{ expression }}))
    end
{%- endmacro %}


{#- Whole cents to currency units, as a double. -#}
{% macro cents_to_amount(expression) -%}
    (cast({{ expression }} as double) / 100.0)
{%- endmacro %}
