{#
    Views on Postgres are replaced in place (CREATE OR REPLACE VIEW), so the views built on
    them stay where they are.

    dbt's own view materialization builds the new view beside the old one, swaps their names
    and drops the old one with CASCADE; Postgres ties a dependent view to the old view itself,
    so the CASCADE drops every view built on it too (dbt-core#2185, wontfix) until dbt reaches
    that view's own node. marts.pipeline_health reads staging.stg_crypto_quotes: every
    per-minute build would take it away from the dashboard for a second or two, and a page
    asking in that moment would be told it does not exist.

    Postgres replaces a view in place when the new query keeps the old columns (name, type,
    order; new ones may follow). When a model removes, renames or retypes a column it refuses
    (invalid_table_definition): that view is built the default way instead (and its dependents
    are dropped and rebuilt by their own nodes, as before). A table or nothing in the view's
    place, or --full-refresh, takes the default way too.
#}
{% materialization view, adapter='postgres' %}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- if existing_relation is none or not existing_relation.is_view or should_full_refresh() -%}
        {{ return(materialization_view_default()) }}
    {%- endif -%}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set replace_sql = get_replace_view_sql(target_relation, sql) -%}
    {%- call statement('view_replaceable', fetch_result=True) -%}
        {{ moonwatch_view_replaceable(replace_sql) }}
    {%- endcall -%}
    {%- do adapter.commit() -%}
    {%- if not load_result('view_replaceable')['data'][0][0] -%}
        {{ log("Cannot replace " ~ target_relation ~ " in place (its columns changed): "
               ~ "rebuilding it, which drops the views that depend on it until their own "
               ~ "nodes run", info=True) }}
        {{ return(materialization_view_default()) }}
    {%- endif -%}
    {%- set grant_config = config.get('grants') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- call statement('main') -%}
        {{ replace_sql }}
    {%- endcall -%}

    {%- set should_revoke = should_revoke(existing_relation, full_refresh_mode=False) -%}
    {%- do apply_grants(target_relation, grant_config, should_revoke=should_revoke) -%}
    {%- do persist_docs(target_relation, model) -%}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{#- Whether Postgres would replace the view with replace_sql: the replace is tried and always
    rolled back (a raised MW001 undoes it); false where Postgres refuses it for the view's
    columns; any other error is raised as it is. -#}
{% macro moonwatch_view_replaceable(replace_sql) -%}
create or replace function pg_temp.moonwatch_view_replaceable(ddl text) returns boolean
language plpgsql as $moonwatch$
begin
    begin
        execute ddl;
    exception when invalid_table_definition then
        return false;
    end;
    raise exception using errcode = 'MW001';
exception when sqlstate 'MW001' then
    return true;
end
$moonwatch$;
select pg_temp.moonwatch_view_replaceable($moonwatch_view$
{{ replace_sql }}
$moonwatch_view$)
{%- endmacro %}
