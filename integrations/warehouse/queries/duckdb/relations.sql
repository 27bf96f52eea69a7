SELECT r.schema_name,
       r.table_name,
       r.kind,
       r.row_count,
       CAST(NULL AS BIGINT) AS size_bytes,
       CAST(NULL AS TIMESTAMP) AS last_altered,
       list(c.column_name ORDER BY c.column_index) AS column_names,
       list(c.data_type ORDER BY c.column_index) AS column_types,
       list(c.is_nullable ORDER BY c.column_index) AS column_nullable,
       list(c.column_index ORDER BY c.column_index) AS column_ordinals,
       r.comment,
       list(c.comment ORDER BY c.column_index) AS column_comments
FROM (
  SELECT database_name, schema_name, table_name, 'table' AS kind, estimated_size AS row_count,
         comment
  FROM duckdb_tables()
  WHERE NOT internal AND NOT temporary
  UNION ALL
  SELECT database_name, schema_name, view_name, 'view', NULL, comment
  FROM duckdb_views()
  WHERE NOT internal AND NOT temporary
) AS r
LEFT JOIN duckdb_columns() AS c
  ON c.database_name = r.database_name
 AND c.schema_name = r.schema_name
 AND c.table_name = r.table_name
WHERE r.database_name = current_database()
  AND r.schema_name IN :schemas
  AND (CAST(:name AS VARCHAR) IS NULL OR r.table_name = CAST(:name AS VARCHAR))
GROUP BY r.schema_name, r.table_name, r.kind, r.row_count, r.comment
ORDER BY r.schema_name, r.table_name
