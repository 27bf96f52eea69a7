{{ config(meta={'owner': 'payments-team@example.com'}) }}

select
    payment_id,
    order_id,
    payment_method,
    -- still text: the export sends "N/A" for payments it could not reconcile
    amount,
    _loaded_at as loaded_at
from {{ source('raw', 'payments') }}
