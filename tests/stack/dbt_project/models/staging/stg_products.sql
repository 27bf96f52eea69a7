select
    product_id,
    product_name,
    -- the export renamed this column to `price`: this model errors until it follows
    product_price
from {{ source('raw', 'products') }}
