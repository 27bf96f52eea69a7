SELECT *
FROM (
  SELECT h.query_id,
         h.user_id,
         TRIM(h.query_label) AS tag,
         TRIM(h.database_name) AS warehouse,
         TRIM(h.status) AS status,
         TRIM(h.error_message) AS error_message,
         h.start_time AS started_at,
         h.elapsed_time AS elapsed_us,
         h.queue_time AS queued_us,
         h.execution_time AS compute_us,
         SUBSTRING(h.query_text, 1, 2000) AS query_text
  FROM sys_query_history AS h
  WHERE h.start_time >= :since
    AND h.start_time < :until
    AND (:failed_only = FALSE OR TRIM(h.status) = 'failed')
    AND (:warehouse IS NULL OR TRIM(h.database_name) = :warehouse)
) AS q
ORDER BY CASE WHEN :order = 'slowest' THEN q.elapsed_us END DESC NULLS LAST,
         CASE WHEN :order = 'costliest' THEN q.compute_us END DESC NULLS LAST,
         q.started_at DESC
