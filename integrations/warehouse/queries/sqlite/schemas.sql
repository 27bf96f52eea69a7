SELECT 'main' AS schema_name, 1 AS usable
