-- pipebot's Databricks principal (Unity Catalog): reads the catalog over the REST API and never
-- a row of data.
--
-- pipebot calls GET /api/2.1/unity-catalog/schemas, /tables (with include_browse=true) and
-- /tables/{full_name}. BROWSE on a catalog shows the metadata of every object in it without any
-- access to data (docs.databricks.com/aws/discover/database-objects); USE CATALOG and USE SCHEMA
-- let the principal name the catalog and its schemas. No SELECT, no MODIFY, no CAN USE on a SQL
-- warehouse: the catalog needs none (pipebot makes no SQL query for it).
--
-- 1. Create a service principal (account console > User management > Service principals, or
--    `databricks service-principals create --display-name pipebot`), add it to the workspace,
--    and create an OAuth secret for it. pipebot's URL is then
--      databricks://<client-id>:<client-secret>@<workspace-host>?catalog=main&schema=analytics
--    (or, with a personal access token: databricks://token:<PAT>@<workspace-host>?catalog=main).
-- 2. Replace main, analytics and `pipebot` (the service principal's application id, in
--    backticks) below, then run this in a SQL editor or notebook as the catalog's owner or a
--    metastore admin. Repeat the catalog block per catalog.
-- Not run by the tests (they talk to a local fake of the REST API; grants cannot be emulated).

GRANT USE CATALOG ON CATALOG main TO `pipebot`;
GRANT BROWSE ON CATALOG main TO `pipebot`;

-- Every schema of the catalog, now and later:
GRANT USE SCHEMA ON CATALOG main TO `pipebot`;
-- ... or only some (then drop the line above):
-- GRANT USE SCHEMA ON SCHEMA main.analytics TO `pipebot`;

-- Optional, for spend and query history (`costs`, docs/warehouses.md "Spend and slow
-- queries"): the two system tables, and a SQL warehouse to read them on (its id goes in the
-- URL: warehouse_id=<id>). system.query.history holds everyone's query text: pipebot shows it
-- cut short with literals masked. The system schemas must be enabled by an account admin.
-- GRANT USE CATALOG ON CATALOG system TO `pipebot`;
-- GRANT USE SCHEMA ON SCHEMA system.billing TO `pipebot`;
-- GRANT SELECT ON TABLE system.billing.usage TO `pipebot`;
-- GRANT USE SCHEMA ON SCHEMA system.query TO `pipebot`;
-- GRANT SELECT ON TABLE system.query.history TO `pipebot`;
-- and CAN USE on that SQL warehouse (its Permissions tab in the workspace, or
--   databricks permissions update warehouses <id> --json '{"access_control_list":
--     [{"service_principal_name": "<application-id>", "permission_level": "CAN_USE"}]}').

-- Check: the principal's effective grants should be exactly these.
SHOW GRANTS `pipebot` ON CATALOG main;
