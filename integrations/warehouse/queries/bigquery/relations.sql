SELECT t.table_schema AS schema_name,
       t.table_name,
       CASE t.table_type
         WHEN 'BASE TABLE' THEN 'table'
         WHEN 'VIEW' THEN 'view'
         WHEN 'MATERIALIZED VIEW' THEN 'materialized view'
         WHEN 'EXTERNAL' THEN 'external table'
         ELSE LOWER(t.table_type)
       END AS kind,
       s.total_rows AS row_count,
       s.total_logical_bytes AS size_bytes,
       s.storage_last_modified_time AS last_altered,
       ARRAY_AGG(c.column_name IGNORE NULLS ORDER BY c.ordinal_position) AS column_names,
       ARRAY_AGG(c.data_type IGNORE NULLS ORDER BY c.ordinal_position) AS column_types,
       ARRAY_AGG(c.is_nullable = 'YES' IGNORE NULLS ORDER BY c.ordinal_position)
         AS column_nullable,
       ARRAY_AGG(c.ordinal_position IGNORE NULLS ORDER BY c.ordinal_position)
         AS column_ordinals,
       CAST(NULL AS STRING) AS comment,
       CAST(NULL AS STRING) AS column_comments
FROM {views}.TABLES AS t
LEFT JOIN {views}.TABLE_STORAGE AS s
  ON s.table_schema = t.table_schema AND s.table_name = t.table_name
LEFT JOIN {views}.COLUMNS AS c
  ON c.table_schema = t.table_schema AND c.table_name = t.table_name
WHERE t.table_schema IN :schemas
  AND (:name IS NULL OR t.table_name = :name)
GROUP BY t.table_schema, t.table_name, t.table_type, s.total_rows, s.total_logical_bytes,
         s.storage_last_modified_time
ORDER BY t.table_schema, t.table_name
