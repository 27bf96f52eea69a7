-- One row per day: the time spine MetricFlow needs for the semantic models below.
select cast(range as date) as date_day
from range(date '2026-01-01', date '2027-12-31', interval 1 day)
