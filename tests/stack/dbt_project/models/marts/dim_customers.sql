with orders as (
    select
        customer_id,
        min(order_date) as first_order_date,
        count(*) as order_count
    from {{ ref('stg_orders') }}
    group by customer_id
)

select
    c.customer_id,
    c.first_name,
    c.last_name,
    c.email,
    c.country,
    o.first_order_date,
    coalesce(o.order_count, 0) as order_count
from {{ ref('stg_customers') }} as c
left join orders as o using (customer_id)
