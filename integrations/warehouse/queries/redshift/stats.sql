SELECT i."schema" AS schema_name,
       i."table" AS table_name,
       i.tbl_rows AS row_count,
       i."size" * 1048576 AS size_bytes,
       NULL AS last_altered
FROM svv_table_info AS i
WHERE i."schema" IN :schemas
  AND (:name IS NULL OR i."table" = :name)
ORDER BY i."schema", i."table"
