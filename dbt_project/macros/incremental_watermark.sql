{#
    Watermarks that follow commit order, so no committed row is ever skipped.

    A row's stamp (raw loaded_at, quotes_coins transformed_at) is the clock time of its
    INSERT, but it becomes visible only when its transaction commits, which can be minutes
    later. "Newest stamp minus a lookback" therefore skips any row whose transaction took
    longer than the lookback. Instead, every incremental run records a SAFE POINT at its
    start (pre-hook record_safe_point, in the model's own transaction, before its query takes
    its snapshot):

        safe point = least(now, start of every transaction in this database holding a
                     transaction id, i.e. one that has written something)

    Every row the run cannot see belongs to a transaction still open at that moment (it
    started, so stamped its rows, at or after the safe point) or to one that got its id
    later (it wrote, so stamped, later still). So the next run reads from the recorded safe
    point (minus var incremental_margin) and cannot miss a row; it drops the ones it already
    holds. A long loader transaction only holds the safe point back while it is open.

    The state lives in staging.incremental_state (created by on-run-start): one row per
    model. The pre-hook writes it inside the model's transaction, so the point moves on only
    when the model's rows commit with it.

    Sessions of other roles: Postgres hides their transaction start unless the reader has
    pg_read_all_stats. A hidden session of a role that may write the model's input is
    counted as if its transaction began var incremental_lookback ago, the old behaviour.
#}

{% macro incremental_state_relation() -%}
    {{ return(api.Relation.create(
        database=target.database, schema='staging', identifier='incremental_state'
    )) }}
{%- endmacro %}


{% macro create_incremental_state() -%}
    create schema if not exists staging;
    create table if not exists {{ incremental_state_relation() }} (
        model_name   text         primary key,
        safe_from    timestamptz  not null,
        recorded_at  timestamptz  not null default clock_timestamp()
    );
{%- endmacro %}


{#
    The incremental filter's lower bound for this model, as a timestamptz LITERAL read when
    the model runs: the safe point its last run recorded, minus var incremental_margin. A
    model without one yet (first incremental run after an upgrade) falls back to
    max(<fallback_column>) of its own table minus var incremental_lookback.

    A literal, not a subquery: with a subquery the planner cannot know how few rows are newer
    and, on a big table, picks a parallel sequential scan of all history (seen on
    raw.crypto_quotes at 3M rows); with a literal it reads them through the stamp's index.
#}
{% macro incremental_watermark(fallback_column) -%}
    {%- if not execute -%}
        {{ return("'-infinity'::timestamptz") }}
    {%- endif -%}
    {%- set query -%}
        select coalesce(
            (select safe_from - interval '{{ var("incremental_margin") }}'
             from {{ incremental_state_relation() }}
             where model_name = '{{ this }}'),
            (select max({{ fallback_column }}) - interval '{{ var("incremental_lookback") }}'
             from {{ this }}),
            '-infinity'::timestamptz
        )::text
    {%- endset -%}
    {%- set since = run_query(query).columns[0].values()[0] -%}
    {{ return("'" ~ since ~ "'::timestamptz") }}
{%- endmacro %}


{#
    Pre-hook (inside the model's transaction) of every incremental model: record the safe
    point described above for its next run. `inputs` are the relations whose writers matter
    (a hidden session only counts when its role may write one of them).
#}
{% macro record_safe_point(inputs) -%}
    insert into {{ incremental_state_relation() }} as state (model_name, safe_from)
    select
        '{{ this }}',
        least(
            clock_timestamp(),
            min(activity.xact_start) filter (where activity.backend_xid is not null),
            min(clock_timestamp() - interval '{{ var("incremental_lookback") }}')
                filter (
                    -- Postgres shows a hidden session as this text, with nulls elsewhere.
                    where activity.query = '<insufficient privilege>'
                        and ({% for input in inputs -%}
                            has_table_privilege(activity.usesysid, '{{ input }}', 'INSERT')
                            {%- if not loop.last %} or {% endif -%}
                        {%- endfor %})
                )
        )
    from pg_stat_activity as activity
    where activity.datname = current_database()
        and activity.pid <> pg_backend_pid()
    on conflict (model_name) do update
        set safe_from = excluded.safe_from, recorded_at = clock_timestamp()
{%- endmacro %}


{#
    Incremental models whose stored grain (their unique indexes) is not the one they are
    configured with rebuild in full, once: after an upgrade that changes a model's key
    (source was added to every key), an incremental run would otherwise violate the new
    grain or keep rows keyed the old way. The check is one catalog query per model run.
#}
{% macro should_full_refresh() -%}
    {%- set configured = config.get('full_refresh') -%}
    {%- if configured is none -%}
        {%- set configured = flags.FULL_REFRESH -%}
    {%- endif -%}
    {%- if not configured and execute and model.config.materialized == 'incremental' -%}
        {%- set configured = stored_grain_differs() -%}
    {%- endif -%}
    {{ return(configured) }}
{%- endmacro %}


{% macro stored_grain_differs() -%}
    {%- set wanted = [] -%}
    {%- for index in config.get('indexes') or [] -%}
        {%- if index.get('unique') -%}
            {%- do wanted.append(index['columns'] | join(',')) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not wanted -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set query -%}
        select string_agg(attribute.attname, ',' order by key.ordinality)
        from pg_index as index
        cross join lateral unnest(index.indkey) with ordinality as key (attnum, ordinality)
        join pg_attribute as attribute
            on attribute.attrelid = index.indrelid and attribute.attnum = key.attnum
        where index.indrelid = to_regclass('{{ this }}')
            and index.indisunique
        group by index.indexrelid
    {%- endset -%}
    {%- set result = run_query(query) -%}
    {%- if result.rows | length == 0 and adapter.get_relation(
            database=this.database, schema=this.schema, identifier=this.identifier) is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set stored = result.columns[0].values() -%}
    {%- for columns in wanted -%}
        {%- if columns not in stored -%}
            {{ log("Rebuilding " ~ this ~ " in full: it has no unique index on (" ~ columns
                   ~ "), the grain its model now declares", info=true) }}
            {{ return(true) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(false) }}
{%- endmacro %}
