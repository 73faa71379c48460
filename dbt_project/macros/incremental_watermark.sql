{#
    The incremental filter's lower bound: max(<column>) of this model's existing table minus
    var incremental_lookback, as a timestamptz LITERAL read when the model runs.

    A literal, not a `(select max(...) from this)` subquery: with a subquery the planner
    cannot know how few rows are newer and, on a big table, picks a parallel sequential scan
    of all history (seen on raw.crypto_quotes at 3M rows); with a literal it estimates the
    new rows from the index's end and reads them through the loaded_at index.
#}
{% macro incremental_watermark(column) -%}
    {%- if not execute -%}
        {{ return("'-infinity'::timestamptz") }}
    {%- endif -%}
    {%- set query -%}
        select coalesce(max({{ column }}), '-infinity'::timestamptz)::text from {{ this }}
    {%- endset -%}
    {%- set newest = run_query(query).columns[0].values()[0] -%}
    {{ return(
        "'" ~ newest ~ "'::timestamptz - interval '" ~ var('incremental_lookback') ~ "'"
    ) }}
{%- endmacro %}
