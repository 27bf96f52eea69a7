select
    order_id,
    customer_id,
    order_date,
    status,
    amount,
    _loaded_at as loaded_at
from {{ source('raw', 'orders') }}
