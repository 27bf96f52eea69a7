SELECT 'main' AS schema_name,
       m.name AS table_name,
       m.type AS kind,
       NULL AS row_count,
       NULL AS size_bytes,
       NULL AS last_altered,
       json_group_array(p.name) AS column_names,
       json_group_array(p.type) AS column_types,
       json_group_array(p."notnull" = 0) AS column_nullable,
       json_group_array(p.cid + 1) AS column_ordinals,
       NULL AS comment,
       NULL AS column_comments
FROM sqlite_master AS m
LEFT JOIN pragma_table_info(m.name) AS p
WHERE m.type IN ('table', 'view')
  AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'
  AND 'main' IN :schemas
  AND (:name IS NULL OR m.name = :name)
GROUP BY m.name, m.type
ORDER BY m.name
