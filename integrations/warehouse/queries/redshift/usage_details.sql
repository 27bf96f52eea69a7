SELECT d.query_id,
       TRIM(d.table_name) AS table_name,
       SUM(d.input_bytes) AS bytes_scanned
FROM sys_query_detail AS d
WHERE d.query_id IN :ids
  AND TRIM(d.step_name) = 'scan'
  AND d.table_id > 0
GROUP BY d.query_id, TRIM(d.table_name)
ORDER BY d.query_id, table_name
