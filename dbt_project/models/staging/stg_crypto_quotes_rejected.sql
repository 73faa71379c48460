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

),

deduplicated as (

    select distinct * from renamed

)

select * from deduplicated
