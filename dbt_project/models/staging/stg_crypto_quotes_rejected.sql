with

source as (

    select * from {{ source('raw', 'crypto_quotes_rejected') }}

),

renamed as (

    select
        ----------  ids
        rejected_id,
        message_key,

        ---------- text
        reason as rejection_reason,
        message_base64,

        ---------- lineage
        kafka_topic,
        kafka_partition,
        kafka_offset,

        ---------- timestamps
        rejected_at

    from source

)

-- No `select distinct`: raw.crypto_quotes_rejected has primary key (rejected_id),
-- so its rows are already unique. A plain view lets filters and max() on it use the
-- raw table's indexes; the DISTINCT view it replaces scanned and sorted all history.
select * from renamed
