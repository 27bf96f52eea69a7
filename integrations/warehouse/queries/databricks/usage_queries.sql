SELECT *
FROM (
  SELECT h.statement_id AS query_id,
         h.executed_by AS user_name,
         h.client_application AS tag,
         h.compute.warehouse_id AS warehouse,
         h.execution_status AS status,
         h.error_message,
         h.start_time AS started_at,
         h.total_duration_ms AS elapsed_ms,
         COALESCE(h.waiting_for_compute_duration_ms, 0)
           + COALESCE(h.waiting_at_capacity_duration_ms, 0) AS queued_ms,
         h.total_task_duration_ms AS compute_ms,
         h.read_bytes AS bytes_scanned,
         SUBSTRING(h.statement_text, 1, 2000) AS query_text
  FROM system.query.history AS h
  WHERE h.start_time >= :since
    AND h.start_time < :until
    AND (:failed_only = FALSE OR h.execution_status = 'FAILED')
    AND (:warehouse IS NULL OR h.compute.warehouse_id = :warehouse)
) AS q
ORDER BY CASE WHEN :order = 'slowest' THEN q.elapsed_ms END DESC NULLS LAST,
         CASE WHEN :order = 'costliest' THEN q.compute_ms END DESC NULLS LAST,
         q.started_at DESC
