-- pipebot's warehouse user (Amazon Redshift): it reads the catalog and never a row of data.
--
-- pipebot reads svv_tables and svv_columns (every object, local, external and late-binding,
-- visible to every user while metadata security is off), pg_namespace, and svv_table_info for
-- row counts and sizes. svv_table_info is visible to superusers only unless granted
-- (docs.aws.amazon.com/redshift/latest/dg/r_SVV_TABLE_INFO.html); without the grant pipebot
-- still works and says "unknown" for rows and sizes. No SELECT on any table is needed.
--
-- Replace pipebot_reader, the password, the database (dev) and the schema (analytics; repeat
-- the GRANT USAGE line per schema), then run as a superuser. pipebot's URL is then
--   redshift+psycopg2://pipebot_reader:<password>@<cluster>.<id>.<region>.redshift.amazonaws.com:5439/dev
-- or, with IAM instead of a password, redshift+redshift_connector:// (docs/warehouses.md).
-- tests/integrations/warehouse/test_redshift.py parses this file; Redshift itself is not
-- available to the tests.

CREATE USER pipebot_reader PASSWORD 'Change-me-1' CONNECTION LIMIT 5;

-- Belt and braces behind pipebot's own per-session settings and read-only transactions.
ALTER USER pipebot_reader SET statement_timeout TO 30000;
ALTER USER pipebot_reader SET query_group TO 'pipebot';

GRANT USAGE ON SCHEMA analytics TO pipebot_reader;

-- Row counts and sizes (optional).
GRANT SELECT ON svv_table_info TO pipebot_reader;

-- With metadata security on (ALTER SYSTEM SET metadata_security = true) svv_columns shows only
-- objects the user has privileges on: grant the structure-only privilege per schema then.
-- Unverified that REFERENCES alone is enough there; SELECT is, but also reads data.
-- GRANT REFERENCES ON ALL TABLES IN SCHEMA analytics TO pipebot_reader;

-- Query history (`costs`, docs/warehouses.md "Spend and slow queries"): SYS_QUERY_HISTORY and
-- SYS_QUERY_DETAIL need no grant, but show a user only their own queries. To see everyone's
-- slow and failing queries (and their query text, which pipebot shows cut short with literals
-- masked), optionally:
-- ALTER USER pipebot_reader SYSLOG ACCESS UNRESTRICTED;
-- Redshift has no spend view (a provisioned cluster bills per node-hour).

-- Deliberately absent: SELECT on tables, CREATE on the database or any schema, membership in
-- sys:monitor or sys:operator (they see every user's query text), superuser (CREATEUSER).
