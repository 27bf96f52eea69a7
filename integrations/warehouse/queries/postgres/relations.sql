SELECT n.nspname AS schema_name,
       c.relname AS table_name,
       CASE c.relkind
         WHEN 'r' THEN 'table'
         WHEN 'p' THEN 'partitioned table'
         WHEN 'v' THEN 'view'
         WHEN 'm' THEN 'materialized view'
         WHEN 'f' THEN 'foreign table'
       END AS kind,
       CASE
         WHEN c.relkind IN ('v', 'f', 'p') THEN NULL
         WHEN c.reltuples >= 0 THEN CAST(c.reltuples AS BIGINT)
         ELSE pg_catalog.pg_stat_get_live_tuples(c.oid)
       END AS row_count,
       CASE
         WHEN c.relkind IN ('r', 'm') AND c.reltuples >= 0
         THEN CAST(c.relpages + COALESCE(t.relpages, 0) + COALESCE(x.pages, 0) AS BIGINT) * 8192
       END AS size_bytes,
       pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid) AS last_altered,
       cols.column_names,
       cols.column_types,
       cols.column_nullable,
       cols.column_ordinals,
       (SELECT d.description
        FROM pg_catalog.pg_description AS d
        WHERE d.objoid = c.oid
          AND d.classoid = CAST('pg_catalog.pg_class' AS REGCLASS)
          AND d.objsubid = 0) AS comment,
       (SELECT json_object_agg(d.objsubid, d.description)
        FROM pg_catalog.pg_description AS d
        WHERE d.objoid = c.oid
          AND d.classoid = CAST('pg_catalog.pg_class' AS REGCLASS)
          AND d.objsubid > 0) AS column_comments
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class AS t ON t.oid = c.reltoastrelid
LEFT JOIN (
  SELECT i.indrelid, SUM(ic.relpages) AS pages
  FROM pg_catalog.pg_index AS i
  JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid
  GROUP BY i.indrelid
) AS x ON x.indrelid = c.oid
LEFT JOIN LATERAL (
  SELECT array_agg(CAST(a.attname AS TEXT)) AS column_names,
         array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod)) AS column_types,
         array_agg(NOT a.attnotnull) AS column_nullable,
         array_agg(CAST(a.attnum AS INT)) AS column_ordinals
  FROM pg_catalog.pg_attribute AS a
  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
) AS cols ON TRUE
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND NOT c.relispartition
  AND n.nspname IN :schemas
  AND (CAST(:name AS TEXT) IS NULL OR c.relname = CAST(:name AS TEXT))
ORDER BY n.nspname, c.relname
