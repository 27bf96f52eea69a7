SELECT DATE(j.creation_time) AS day,
       j.project_id AS warehouse,
       SUM(j.total_bytes_billed) AS bytes_billed,
       SUM(j.total_slot_ms) AS slot_ms,
       COUNT(*) AS queries
FROM {views}.JOBS AS j
WHERE j.creation_time >= :since
  AND j.creation_time < :until
  AND j.job_type = 'QUERY'
  AND (j.statement_type IS NULL OR j.statement_type <> 'SCRIPT')
GROUP BY day, warehouse
ORDER BY day, warehouse
