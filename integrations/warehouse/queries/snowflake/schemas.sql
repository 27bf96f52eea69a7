SELECT schema_name, TRUE AS usable
FROM information_schema.schemata
WHERE schema_name <> 'INFORMATION_SCHEMA'
ORDER BY schema_name
