SELECT c.table_schema AS schema_name,
       c.table_name,
       c.column_name AS name,
       CASE
         WHEN c.character_maximum_length IS NOT NULL
         THEN c.data_type || '(' || c.character_maximum_length || ')'
         WHEN c.data_type = 'numeric' AND c.numeric_precision IS NOT NULL
         THEN 'numeric(' || c.numeric_precision || ',' || COALESCE(c.numeric_scale, 0) || ')'
         ELSE c.data_type
       END AS type,
       c.is_nullable = 'YES' AS nullable,
       c.ordinal_position AS ordinal,
       c.remarks AS comment
FROM svv_columns AS c
WHERE c.table_schema IN :schemas
  AND (:name IS NULL OR c.table_name = :name)
ORDER BY c.table_schema, c.table_name, c.ordinal_position
