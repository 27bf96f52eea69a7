-- pipebot's warehouse role (PostgreSQL): it reads the catalog and never a row of data.
--
-- pipebot describes tables from pg_catalog (pg_class, pg_namespace, pg_attribute,
-- pg_stat_user_tables), which every role may read. All it needs is to log in, to connect, and
-- USAGE on each schema it should describe: pipebot lists only schemas with USAGE and answers
-- "permission denied for schema x" for the others. It needs no SELECT on any table, so neither
-- a bug nor a prompt injection can make it read data through this role.
--
-- Replace pipebot_reader, the password, the database name (warehouse) and the schema name
-- (analytics; repeat the GRANT USAGE line per schema), then run as the owner of those schemas.
-- tests/integrations/warehouse runs this file against the real PostgreSQL of the test machine.

CREATE ROLE pipebot_reader LOGIN PASSWORD 'change-me' NOSUPERUSER NOCREATEDB NOCREATEROLE;

-- Belt and braces behind pipebot's own read-only transactions and statement timeout.
ALTER ROLE pipebot_reader SET default_transaction_read_only = on;
ALTER ROLE pipebot_reader SET statement_timeout = '30s';
ALTER ROLE pipebot_reader CONNECTION LIMIT 5;

GRANT CONNECT ON DATABASE warehouse TO pipebot_reader;
GRANT USAGE ON SCHEMA analytics TO pipebot_reader;

-- Deliberately absent: GRANT SELECT ON ALL TABLES …, ALTER DEFAULT PRIVILEGES …,
-- membership in pg_read_all_data.
--
-- `pipebot doctor` checks the login and fails, naming the REVOKE to run, when it can write:
-- superuser, CREATEROLE, CREATEDB, membership in a role that can write, INSERT/UPDATE/DELETE/
-- TRUNCATE on a table of the configured schemas, CREATE on a schema or the database, EXECUTE on
-- dblink-like extension functions, USAGE on a foreign data wrapper or server. Two grants to
-- PUBLIC can trip it on an older or extended database, since this role inherits them:
--   PostgreSQL 14 and older give PUBLIC CREATE on schema public:
--     REVOKE CREATE ON SCHEMA public FROM PUBLIC;
--   dblink's functions are executable by PUBLIC once the extension is installed:
--     REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA <dblink's schema> FROM PUBLIC;
