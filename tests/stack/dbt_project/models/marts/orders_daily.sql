select
    order_date,
    count(*) as order_count,
    -- null for a day whose amounts are all missing: the not_null test below catches it
    sum(amount) as revenue
from {{ ref('fct_orders') }}
group by order_date
