{#
    Why a typed quote row cannot go into the marts, or null when it can. The same rules as
    the Kafka contract (plugins/moonwatch/messages.py): price > 0; market cap, volume and
    supplies >= 0 or null (CoinMarketCap reports market_cap 0 and null supply for coins whose
    supply it has not verified: a value, not an error). The loader validates every message,
    so a row that breaks them came from elsewhere (an older contract, a hand-made insert).

    stg_crypto_quotes exposes it as invalid_reason. quotes_coins takes only the rows without
    one, so one coin's bad row never stops the other coins' marts; int_loads_per_minute
    counts the others per minute and pipeline_health reports them (quarantined_last_hour).
#}
{% macro quote_row_problem() -%}
    case
        when coin_id is null then 'coin_id is null'
        when quote_currency is null then 'quote_currency is null'
        when last_updated_at is null then 'last_updated_at is null'
        when source is null or source not in ('coinmarketcap', 'simulator')
            then 'source is not coinmarketcap or simulator'
        when price is null then 'price is null'
        -- NaN sorts above every number in Postgres, so it is named, like infinity.
        when price <= 0 or price in ('NaN', 'Infinity') then 'price is not > 0'
        when market_cap < 0 then 'market_cap < 0'
        when volume_24h < 0 then 'volume_24h < 0'
        when fully_diluted_market_cap < 0 then 'fully_diluted_market_cap < 0'
        when circulating_supply < 0 then 'circulating_supply < 0'
        when total_supply < 0 then 'total_supply < 0'
        when max_supply < 0 then 'max_supply < 0'
    end
{%- endmacro %}
