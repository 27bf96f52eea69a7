SELECT t.table_schema AS schema_name,
       t.table_name,
       CASE t.table_type
         WHEN 'BASE TABLE' THEN 'table'
         WHEN 'VIEW' THEN 'view'
         WHEN 'MATERIALIZED VIEW' THEN 'materialized view'
         WHEN 'EXTERNAL TABLE' THEN 'external table'
         ELSE LOWER(t.table_type)
       END AS kind,
       t.row_count,
       t.bytes AS size_bytes,
       t.last_altered,
       ARRAY_AGG(c.column_name) WITHIN GROUP (ORDER BY c.ordinal_position) AS column_names,
       ARRAY_AGG(
         CASE
           WHEN c.data_type = 'NUMBER' AND c.numeric_precision IS NOT NULL
           THEN 'NUMBER(' || c.numeric_precision || ',' || COALESCE(c.numeric_scale, 0) || ')'
           WHEN c.data_type = 'TEXT' AND c.character_maximum_length < 16777216
           THEN 'VARCHAR(' || c.character_maximum_length || ')'
           ELSE c.data_type
         END
       ) WITHIN GROUP (ORDER BY c.ordinal_position) AS column_types,
       ARRAY_AGG(c.is_nullable = 'YES') WITHIN GROUP (ORDER BY c.ordinal_position)
         AS column_nullable,
       ARRAY_AGG(c.ordinal_position) WITHIN GROUP (ORDER BY c.ordinal_position)
         AS column_ordinals,
       t.comment,
       ARRAY_AGG(CASE WHEN c.column_name IS NOT NULL THEN COALESCE(c.comment, '') END)
         WITHIN GROUP (ORDER BY c.ordinal_position) AS column_comments
FROM information_schema.tables AS t
LEFT JOIN information_schema.columns AS c
  ON c.table_schema = t.table_schema AND c.table_name = t.table_name
WHERE t.table_schema IN :schemas
  AND (:name IS NULL OR t.table_name = :name)
GROUP BY t.table_schema, t.table_name, t.table_type, t.row_count, t.bytes, t.last_altered,
         t.comment
ORDER BY t.table_schema, t.table_name
