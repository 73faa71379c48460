{{
    config(
        materialized='incremental',
        unique_key=['source', 'coin_id', 'quote_currency'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ record_safe_point([ref('quotes_coins')]) }}",
        indexes=[
            {'columns': ['source', 'coin_id', 'quote_currency'], 'unique': true},
        ]
    )
}}

{#
    One row per source, coin and quote currency: a simulated quote never stands in for a
    real one. A currency or coin no longer fetched keeps its last row, with its fetched_at,
    so a reader can tell it is frozen (compare with the newest fetched_at of its source).

    Incremental, so a build costs O(coins), not O(history): a full row_number() over all of
    quotes_coins grew with every minute loaded. Each run takes the quotes_coins rows written
    since the safe point its last run recorded (through the quotes_coins index on
    transformed_at; macros/incremental_watermark.sql), lets them compete with the current
    rows of the same keys, and replaces those rows with the winners. The current row competes
    too, so a late quote older than it never replaces it.
#}

{%- set columns = [
    'quote_key', 'coin_id', 'symbol', 'name', 'slug', 'quote_currency', 'source',
    'is_simulated', 'cmc_rank', 'price', 'volume_24h', 'volume_change_24h',
    'percent_change_1h', 'percent_change_24h', 'percent_change_7d', 'percent_change_30d',
    'market_cap', 'market_cap_dominance', 'fully_diluted_market_cap', 'circulating_supply',
    'total_supply', 'max_supply', 'last_updated_at', 'fetched_at', 'loaded_at',
    'transformed_at',
] %}

with

quotes as (

    select {{ columns | join(', ') }}
    from {{ ref('quotes_coins') }}

    {% if is_incremental() %}
    where transformed_at > {{ incremental_watermark('transformed_at') }}
    {% endif %}

),

{% if is_incremental() %}
current_rows as (

    select {{ columns | join(', ') }}
    from {{ this }}
    where (source, coin_id, quote_currency) in (select source, coin_id, quote_currency from quotes)

),

candidates as (

    select * from quotes
    union all
    select * from current_rows

),
{% else %}
candidates as (

    select * from quotes

),
{% endif %}

ranked as (

    select
        *,
        row_number() over (
            partition by source, coin_id, quote_currency
            order by last_updated_at desc, fetched_at desc nulls last, loaded_at desc
        ) as recency_rank

    from candidates

),

final as (

    select {{ columns | join(', ') }}
    from ranked
    where recency_rank = 1

)

select * from final
