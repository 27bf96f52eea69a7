{{ config(meta={'owner': '@sam'}) }}

select
    o.customer_id,
    -- fails on the "N/A" amounts payments_sync writes when it cannot reconcile a payment
    sum(cast(p.amount as decimal(18, 2))) as lifetime_value
from {{ ref('stg_payments') }} as p
join {{ ref('stg_orders') }} as o using (order_id)
group by o.customer_id
