-- pipebot's warehouse role (Snowflake): it reads the catalog and never a row of data.
--
-- pipebot reads <DATABASE>.INFORMATION_SCHEMA.SCHEMATA, TABLES and COLUMNS, which list only the
-- objects the role may access. REFERENCES on a table or view shows its structure (DESCRIBE,
-- SHOW, INFORMATION_SCHEMA) but not its data (docs.snowflake.com/en/user-guide/
-- security-access-control-privileges), so neither a bug nor a prompt injection can read rows
-- through this role. INFORMATION_SCHEMA queries need a running warehouse: a dedicated X-Small
-- one that suspends after a minute keeps the cost visible and small.
--
-- Replace ANALYTICS (the database; repeat the block per database), PIPEBOT_XS, PIPEBOT and the
-- public key, then run as a role that may create roles, users and warehouses (SECURITYADMIN
-- for the role and user, SYSADMIN for the warehouse). pipebot's URL is then
--   snowflake://PIPEBOT@<account>/ANALYTICS?warehouse=PIPEBOT_XS&role=PIPEBOT_METADATA
--     &private_key_file=/run/secrets/pipebot_rsa_key.p8
-- (docs/warehouses.md). Not run by the tests: fakesnow has no roles or grants.

USE ROLE SYSADMIN;
CREATE WAREHOUSE IF NOT EXISTS PIPEBOT_XS
  WAREHOUSE_SIZE = XSMALL
  AUTO_SUSPEND = 60
  AUTO_RESUME = TRUE
  INITIALLY_SUSPENDED = TRUE
  STATEMENT_TIMEOUT_IN_SECONDS = 120  -- behind pipebot's own per-session timeout
  COMMENT = 'pipebot: catalog reads only';

USE ROLE SECURITYADMIN;
CREATE ROLE IF NOT EXISTS PIPEBOT_METADATA COMMENT = 'pipebot: table structure, no data';
GRANT USAGE ON WAREHOUSE PIPEBOT_XS TO ROLE PIPEBOT_METADATA;

GRANT USAGE ON DATABASE ANALYTICS TO ROLE PIPEBOT_METADATA;
GRANT USAGE ON ALL SCHEMAS IN DATABASE ANALYTICS TO ROLE PIPEBOT_METADATA;
GRANT USAGE ON FUTURE SCHEMAS IN DATABASE ANALYTICS TO ROLE PIPEBOT_METADATA;
GRANT REFERENCES ON ALL TABLES IN DATABASE ANALYTICS TO ROLE PIPEBOT_METADATA;
GRANT REFERENCES ON ALL VIEWS IN DATABASE ANALYTICS TO ROLE PIPEBOT_METADATA;
GRANT REFERENCES ON ALL MATERIALIZED VIEWS IN DATABASE ANALYTICS TO ROLE PIPEBOT_METADATA;
-- Future grants on a schema take precedence over these database-level ones: a schema that has
-- its own future grants needs these two lines repeated with IN SCHEMA ANALYTICS.<schema>.
GRANT REFERENCES ON FUTURE TABLES IN DATABASE ANALYTICS TO ROLE PIPEBOT_METADATA;
GRANT REFERENCES ON FUTURE VIEWS IN DATABASE ANALYTICS TO ROLE PIPEBOT_METADATA;

-- A service user: no password, no MFA prompt, key-pair (or OAuth) only.
-- Key pair: openssl genrsa 2048 | openssl pkcs8 -topk8 -v2 des3 -inform PEM -out rsa_key.p8
--           openssl rsa -in rsa_key.p8 -pubout -out rsa_key.pub   (paste it without the
--           BEGIN/END lines below)
CREATE USER IF NOT EXISTS PIPEBOT
  TYPE = SERVICE
  DEFAULT_ROLE = PIPEBOT_METADATA
  DEFAULT_WAREHOUSE = PIPEBOT_XS
  -- Only PIPEBOT_METADATA acts: with secondary roles ('ALL', the default for new users since
  -- the 2024_08 bundle) any other role granted to this user would add its privileges, and
  -- `pipebot doctor` fails naming them.
  DEFAULT_SECONDARY_ROLES = ()
  RSA_PUBLIC_KEY = 'MIIBIjANBgkqh…replace-me…'
  COMMENT = 'pipebot (read-only catalog)';
GRANT ROLE PIPEBOT_METADATA TO USER PIPEBOT;

-- Optional, for spend and query history (`costs`, the digest's spend line, the spend tools;
-- docs/warehouses.md "Spend and slow queries"): WAREHOUSE_METERING_HISTORY and QUERY_HISTORY of
-- SNOWFLAKE.ACCOUNT_USAGE through a database role that reads usage, not data. QUERY_HISTORY
-- holds everyone's query text: pipebot shows it cut short with its literals masked. Without
-- this grant `costs` says which grant is missing. (Tables read per query come from
-- ACCESS_HISTORY, which needs Enterprise Edition and SNOWFLAKE.GOVERNANCE_VIEWER; without it
-- they are shown as unknown.)
-- GRANT DATABASE ROLE SNOWFLAKE.USAGE_VIEWER TO ROLE PIPEBOT_METADATA;

-- Deliberately absent: SELECT on anything, OWNERSHIP, any grant WITH GRANT OPTION, and
-- IMPORTED PRIVILEGES ON DATABASE SNOWFLAKE (much wider than USAGE_VIEWER).
