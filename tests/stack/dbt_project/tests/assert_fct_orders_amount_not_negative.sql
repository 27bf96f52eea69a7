-- Singular test: refunds are modelled as returns, never as negative amounts.
select order_id, amount
from {{ ref('fct_orders') }}
where amount < 0
