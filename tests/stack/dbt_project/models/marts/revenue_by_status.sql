select
    status,
    count(*) as order_count,
    sum(amount) as revenue
from {{ ref('fct_orders') }}
group by status
