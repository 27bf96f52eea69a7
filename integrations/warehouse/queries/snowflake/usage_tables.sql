SELECT a.query_id,
       a.base_objects_accessed AS objects
FROM snowflake.account_usage.access_history AS a
WHERE a.query_start_time >= :since
  AND a.query_start_time < :until
  AND a.query_id IN :ids
