SELECT schema_name, TRUE AS usable
FROM {views}.SCHEMATA
ORDER BY schema_name
