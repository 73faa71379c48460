{{ config(materialized='view') }}

{#
    A view, so it is current whenever the dashboard asks, and cheap at any size: it runs with
    its owner's rights (the read-only dashboard role needs no access to raw) and never counts
    a whole hour of raw rows (~300,000 an hour at 5,000 coins a minute).

    One row per raw table per data source that ever loaded into it (one row with a null
    source for a table that never loaded). The source of the table's newest row is current;
    the others are 'inactive' (e.g. the simulator after the switch to a real key).

    The last hour's counts are exact (loaded_at >= now() - 1 hour) and add three parts:
    - the part-minute at the window's start, counted in raw (at most one minute of rows);
    - the whole minutes after it that int_loads_per_minute holds, before the table's newest
      counted minute (that one may have been counted while still filling);
    - everything from that minute on, counted in raw (the rows loaded since the last dbt
      build: about a minute of rows while builds keep up).
    Each raw count is a range on the table's loaded_at index.

    status is the verdict a reader needs: 'ok', 'warn', 'error' (current source too old, by
    var `freshness`; FX by the rates' own date), 'inactive', with status_reason saying why.
    A missing optional input (no FX rates yet) is a warning, not an error.
#}

{%- set tables = raw_load_sources() %}
{%- set data_sources = raw_data_sources() %}
{%- set freshness = var('freshness') %}
{%- set window_start = "now() - interval '1 hour'" %}
{%- set first_whole_minute = "date_trunc('minute', now() - interval '1 hour') + interval '1 minute'" %}

with

{% for name in tables %}
{%- set raw_table = source('raw', name) %}
{{ name }}_sources as (

    {% for data_source in data_sources[name] %}
    select
        '{{ data_source }}'::text as source,
        (
            select max(minute_at)
            from {{ ref('int_loads_per_minute') }}
            where source_name = '{{ name }}' and source = '{{ data_source }}'
        ) as newest_minute
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

{{ name }}_table as (

    select
        coalesce(max(newest_minute), '-infinity'::timestamptz) as newest_minute,
        -- The newest raw row says which source is current (a backward step on the index).
        (
            select source from {{ raw_table }}
            order by loaded_at desc limit 1
        ) as current_source
    from {{ name }}_sources

),

{{ name }} as (

    select
        '{{ name }}'::text as source_name,
        sources.source,
        sources.source = tables.current_source as is_current,
        greatest(
            (
                select max(last_loaded_at)
                from {{ ref('int_loads_per_minute') }}
                where source_name = '{{ name }}' and source = sources.source
                    and minute_at = sources.newest_minute
            ),
            (
                select max(loaded_at)
                from {{ raw_table }}
                where loaded_at >= greatest(tables.newest_minute, {{ window_start }})
                    and source = sources.source
            )
        ) as last_loaded_at,
        case when sources.source = tables.current_source then
        {%- if name == 'crypto_quotes' %}
            (
                select max(last_updated_at) from {{ ref('latest_quotes') }}
                where source = sources.source
            )
        {%- elif name == 'crypto_listings' %}
            (
                select max(snapshot_at) from {{ source('raw', name) }}
                where source = sources.source
            )
        {%- else %}
            (
                select max(as_of_date)::timestamp at time zone 'UTC'
                from {{ source('raw', name) }}
                where source = sources.source
            )
        {%- endif %}
        end as newest_data_at,
        {%- set counts = ['rows_loaded', 'rows_quarantined'] if name == 'crypto_quotes' else ['rows_loaded'] %}
        {% for column in counts %}
        {#- Quarantine is decided in staging (invalid_reason); plain counts read raw. #}
        {%- set rows = ref('stg_crypto_quotes') if column == 'rows_quarantined' else raw_table %}
        (
            (
                select count(*) {%- if column == 'rows_quarantined' %} filter (where invalid_reason is not null){% endif %}
                from {{ rows }}
                where loaded_at >= {{ window_start }}
                    and loaded_at < {{ first_whole_minute }}
                    and source = sources.source
            )
            + (
                select coalesce(sum({{ column }}), 0)
                from {{ ref('int_loads_per_minute') }}
                where source_name = '{{ name }}' and source = sources.source
                    and minute_at >= {{ first_whole_minute }}
                    and minute_at < tables.newest_minute
            )
            + (
                select count(*) {%- if column == 'rows_quarantined' %} filter (where invalid_reason is not null){% endif %}
                from {{ rows }}
                where loaded_at >= {{ first_whole_minute }}
                    and loaded_at >= tables.newest_minute
                    and source = sources.source
            )
        )::bigint as {{ 'rows_last_hour' if column == 'rows_loaded' else 'quarantined_last_hour' }},
        {% endfor %}
        {% if name != 'crypto_quotes' %}0::bigint as quarantined_last_hour,{% endif %}
        {% if name == 'crypto_quotes' -%}
        (
            (
                select max(quarantine_reason)
                from {{ ref('int_loads_per_minute') }}
                where source_name = '{{ name }}' and source = sources.source
                    and minute_at >= {{ first_whole_minute }}
            )
        ) as quarantine_reason,
        -- A refused message may not say its source: counted on the current source's row.
        case when sources.source = tables.current_source then (
            select count(*)
            from {{ source('raw', 'crypto_quotes_rejected') }}
            where rejected_at >= {{ window_start }}
        ) else 0 end::bigint as rejected_last_hour
        {%- else -%}
        null::text as quarantine_reason,
        (
            select count(*)
            from {{ source('raw', name ~ '_rejected') }}
            where rejected_at >= {{ window_start }}
                and source = sources.source
        )::bigint as rejected_last_hour
        {%- endif %}

    from {{ name }}_sources as sources
    cross join {{ name }}_table as tables
    where sources.newest_minute is not null or sources.source = tables.current_source

    union all

    -- A table that never loaded still has its row.
    select
        '{{ name }}', null, false, null, null, 0, 0, null, 0
    from {{ name }}_table as tables
    where tables.current_source is null

),

{% endfor %}
all_sources as (

    {% for name in tables %}
    select * from {{ name }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

judged as (

    select
        *,
        case source_name
            {% for name in tables -%}
            when '{{ name }}' then
                {%- if name == 'fx_rates' %} now() - newest_data_at
                {%- else %} now() - last_loaded_at{% endif %}
            {% endfor -%}
        end as age,
        case source_name
            {% for name in tables -%}
            when '{{ name }}' then interval '{{ freshness[name]["warn"] }}'
            {% endfor -%}
        end as warn_after,
        case source_name
            {% for name in tables -%}
            when '{{ name }}' then interval '{{ freshness[name]["error"] }}'
            {% endfor -%}
        end as error_after

    from all_sources

),

final as (

    select
        source_name,
        source,
        is_current,
        last_loaded_at,
        newest_data_at,
        rows_last_hour,
        rejected_last_hour,
        quarantined_last_hour,
        quarantine_reason,
        case
            when source is null then 'warn'
            when not is_current then 'inactive'
            when age > error_after then 'error'
            when age > warn_after or quarantined_last_hour > 0 or rejected_last_hour > 0
                then 'warn'
            else 'ok'
        end as status,
        case
            when source is null and source_name = 'fx_rates'
                then 'no FX rates loaded yet: amounts can be shown in USD only until '
                    || 'crypto_fx_load succeeds'
            when source is null then 'nothing loaded yet'
            when not is_current then 'not the current source (its last load: '
                || to_char(last_loaded_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"') || ')'
            when age > warn_after then
                case when source_name = 'fx_rates'
                    then 'the newest FX rates are of '
                        || to_char(newest_data_at at time zone 'UTC', 'YYYY-MM-DD')
                    else 'last load ' || justify_interval(date_trunc('minute', age))::text
                        || ' ago'
                end
                || ', older than '
                || (case when age > error_after then error_after else warn_after end)::text
            when quarantined_last_hour > 0 then quarantined_last_hour::text
                || ' quote(s) in the last hour left out of the marts ('
                || coalesce(quarantine_reason, 'see stg_crypto_quotes.invalid_reason') || ')'
            when rejected_last_hour > 0 then rejected_last_hour::text
                || ' row(s) refused in the last hour (raw.' || source_name || '_rejected)'
        end as status_reason

    from judged

)

select * from final
