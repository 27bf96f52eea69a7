SELECT u.usesysid AS user_id,
       u.usename AS user_name
FROM pg_catalog.pg_user AS u
WHERE u.usesysid IN :ids
