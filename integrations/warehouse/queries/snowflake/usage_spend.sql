SELECT CAST(CONVERT_TIMEZONE('UTC', m.start_time) AS DATE) AS day,
       m.warehouse_name AS warehouse,
       SUM(m.credits_used) AS amount,
       SUM(m.credits_used_compute) AS compute,
       SUM(m.credits_used_cloud_services) AS cloud_services
FROM snowflake.account_usage.warehouse_metering_history AS m
WHERE m.start_time >= :since
  AND m.start_time < :until
GROUP BY CAST(CONVERT_TIMEZONE('UTC', m.start_time) AS DATE), m.warehouse_name
ORDER BY day, warehouse
