SELECT *
FROM (
  SELECT j.job_id AS query_id,
         j.user_email AS user_name,
         j.labels,
         j.project_id AS warehouse,
         j.state AS status,
         j.error_result.reason AS error_code,
         j.error_result.message AS error_message,
         j.creation_time AS created_at,
         j.start_time AS started_at,
         j.end_time AS ended_at,
         TIMESTAMP_DIFF(j.end_time, j.creation_time, MILLISECOND) AS elapsed_ms,
         TIMESTAMP_DIFF(j.start_time, j.creation_time, MILLISECOND) AS queued_ms,
         j.total_slot_ms AS compute_ms,
         j.total_bytes_processed AS bytes_scanned,
         j.total_bytes_billed AS bytes_billed,
         j.referenced_tables,
         SUBSTR(j.query, 1, 2000) AS query_text
  FROM {views}.JOBS AS j
  WHERE j.creation_time >= :since
    AND j.creation_time < :until
    AND j.job_type = 'QUERY'
    AND (j.statement_type IS NULL OR j.statement_type <> 'SCRIPT')
    AND (:failed_only = FALSE OR j.error_result IS NOT NULL)
    AND (:warehouse IS NULL OR j.project_id = :warehouse)
) AS q
ORDER BY CASE WHEN :order = 'slowest' THEN q.elapsed_ms END DESC NULLS LAST,
         CASE WHEN :order = 'costliest' THEN q.bytes_billed END DESC NULLS LAST,
         q.created_at DESC
