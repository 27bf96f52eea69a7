SELECT u.usage_date AS day,
       CASE
         WHEN u.usage_metadata.warehouse_id IS NOT NULL
         THEN CONCAT('warehouse ', u.usage_metadata.warehouse_id)
         WHEN u.usage_metadata.job_id IS NOT NULL THEN CONCAT('job ', u.usage_metadata.job_id)
         WHEN u.usage_metadata.cluster_id IS NOT NULL
         THEN CONCAT('cluster ', u.usage_metadata.cluster_id)
         ELSE LOWER(u.billing_origin_product)
       END AS warehouse,
       SUM(u.usage_quantity) AS amount
FROM system.billing.usage AS u
WHERE u.usage_start_time >= :since
  AND u.usage_start_time < :until
  AND u.usage_unit = 'DBU'
GROUP BY 1, 2
ORDER BY 1, 2
