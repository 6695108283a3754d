{#-
    The expression that orders loads of a bronze table: dlt's `_dlt_load_id` when the table has it, else a
    NULL string (the newest row per key is then chosen by updated_at alone; ties are exact duplicates).
-#}
{% macro bronze_load_id(relation) -%}
    {%- if execute -%}
        {%- set names = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
        {%- if '_dlt_load_id' in names -%}
            {{ return('cast(_dlt_load_id as varchar)') }}
        {%- endif -%}
    {%- endif -%}
    {{ return('cast(null as varchar)') }}
{%- endmacro %}


{#-
    Resolve every bronze source once at the start of a run. On DuckDB this makes the `iceberg` plugin
    materialise each source table before anything reads it, unit-test fixtures included (they take their
    column types from the source relation); on other engines it only checks the relations resolve.
-#}
{% macro resolve_bronze_sources() -%}
    {%- if execute -%}
        {%- for node in graph.sources.values() if node.source_name == 'bronze' -%}
            {%- do source(node.source_name, node.name) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
