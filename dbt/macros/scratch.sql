{#-
    Drop the scratch tables (`<name>__dbt_tmp`) a killed build left in the layers' schemas. dbt's unit tests
    create one per test with a plain CREATE TABLE AS and drop it only at the end, so a build stopped
    mid-test (a pod deleted, a SIGKILL) leaves it behind and every later build's unit test fails with
    "already exists". Nothing else of this project uses the suffix, and one build runs at a time. On
    DuckDB they are temporary tables, gone with the connection.
-#}
{% macro drop_leftover_scratch_tables() -%}
    {%- if execute and target.type != 'duckdb' -%}
        {%- set schemas = [] -%}
        {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
            {%- if (node.database, node.schema) not in schemas -%}
                {%- do schemas.append((node.database, node.schema)) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- for database, schema in schemas -%}
            {%- set schema_relation = api.Relation.create(database=database, schema=schema) -%}
            {%- for row in list_relations_without_caching(schema_relation) if row['name'].endswith('__dbt_tmp') -%}
                {%- set relation = api.Relation.create(
                    database=row['database'], schema=row['schema'], identifier=row['name'], type=row['table_type']
                ) -%}
                {%- do log('dropping ' ~ relation ~ ', left by a build that was stopped', info=True) -%}
                {%- do adapter.drop_relation(relation) -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
