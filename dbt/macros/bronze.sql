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


{#-
    The incremental filter of silver and gold: true for rows built from a bronze load newer than every load
    `this` table was built from (its greatest `dlt_load_id`). Arrival, not business time, decides, so a
    late, backfilled or corrected row is picked up whatever its updated_at. dlt's load ids are epoch seconds
    as text with a ten-digit integer part, so they order as text; a table without the column yet (built by
    an older version of the project) takes every row once, merged on its key.
-#}
{% macro loaded_since_last_build(load_id) -%}
    {#- in a unit test `this` is the name of its fixture, not a relation -#}
    {%- set existing = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list
        if execute and this is not string else [] -%}
    {%- if existing and 'dlt_load_id' not in existing -%}
        true
    {%- else -%}
        {{ load_id }} > (select coalesce(max(dlt_load_id), '') from {{ this }})
    {%- endif -%}
{%- endmacro %}
