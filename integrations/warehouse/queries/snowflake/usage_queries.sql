SELECT *
FROM (
  SELECT h.query_id,
         h.user_name,
         h.query_tag AS tag,
         h.warehouse_name AS warehouse,
         h.execution_status AS status,
         h.error_code,
         h.error_message,
         h.start_time AS started_at,
         h.total_elapsed_time AS elapsed_ms,
         COALESCE(h.queued_provisioning_time, 0) + COALESCE(h.queued_repair_time, 0)
           + COALESCE(h.queued_overload_time, 0) AS queued_ms,
         h.execution_time AS compute_ms,
         h.bytes_scanned,
         COALESCE(h.execution_time, 0) / 3600000.0 * CASE h.warehouse_size
           WHEN 'X-Small' THEN 1
           WHEN 'Small' THEN 2
           WHEN 'Medium' THEN 4
           WHEN 'Large' THEN 8
           WHEN 'X-Large' THEN 16
           WHEN '2X-Large' THEN 32
           WHEN '3X-Large' THEN 64
           WHEN '4X-Large' THEN 128
           WHEN '5X-Large' THEN 256
           WHEN '6X-Large' THEN 512
           ELSE 0
         END + COALESCE(h.credits_used_cloud_services, 0) AS credits,
         SUBSTR(h.query_text, 1, 2000) AS query_text
  FROM snowflake.account_usage.query_history AS h
  WHERE h.start_time >= :since
    AND h.start_time < :until
    AND (:failed_only = FALSE OR h.execution_status = 'FAIL')
    AND (:warehouse IS NULL OR h.warehouse_name = :warehouse)
) AS q
ORDER BY CASE WHEN :order = 'slowest' THEN q.elapsed_ms END DESC NULLS LAST,
         CASE WHEN :order = 'costliest' THEN q.credits END DESC NULLS LAST,
         q.started_at DESC
