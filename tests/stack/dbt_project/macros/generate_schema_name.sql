{#- Use the configured schema as is (raw, staging, marts) instead of dbt's
    <target>_<custom> default, so the warehouse reads like the story. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
