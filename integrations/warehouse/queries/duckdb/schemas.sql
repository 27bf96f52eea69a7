SELECT schema_name, TRUE AS usable
FROM duckdb_schemas()
WHERE database_name = current_database()
  AND schema_name NOT IN ('information_schema', 'pg_catalog')
ORDER BY schema_name
