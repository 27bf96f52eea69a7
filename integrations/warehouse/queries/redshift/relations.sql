SELECT t.table_schema AS schema_name,
       t.table_name,
       CASE t.table_type
         WHEN 'BASE TABLE' THEN 'table'
         WHEN 'VIEW' THEN 'view'
         WHEN 'EXTERNAL TABLE' THEN 'external table'
         ELSE LOWER(t.table_type)
       END AS kind,
       NULL AS row_count,
       NULL AS size_bytes,
       NULL AS last_altered,
       NULL AS column_names,
       NULL AS column_types,
       NULL AS column_nullable,
       NULL AS column_ordinals,
       t.remarks AS comment,
       NULL AS column_comments
FROM svv_tables AS t
WHERE t.table_schema IN :schemas
  AND (:name IS NULL OR t.table_name = :name)
ORDER BY t.table_schema, t.table_name
