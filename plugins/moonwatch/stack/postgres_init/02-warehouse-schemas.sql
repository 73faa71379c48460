-- Schemas and grants inside the warehouse database `moonwatch`, run by bootstrap.sh.
-- moonwatch_loader owns raw, staging and marts; moonwatch_dashboard reads marts and nothing
-- else (today's tables and views and those the loader creates later).
\set ON_ERROR_STOP on
SET client_min_messages = warning;

REVOKE ALL ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA IF NOT EXISTS raw AUTHORIZATION moonwatch_loader;
CREATE SCHEMA IF NOT EXISTS staging AUTHORIZATION moonwatch_loader;
CREATE SCHEMA IF NOT EXISTS marts AUTHORIZATION moonwatch_loader;

GRANT USAGE ON SCHEMA marts TO moonwatch_dashboard;
GRANT SELECT ON ALL TABLES IN SCHEMA marts TO moonwatch_dashboard;
ALTER DEFAULT PRIVILEGES FOR ROLE moonwatch_loader IN SCHEMA marts
    GRANT SELECT ON TABLES TO moonwatch_dashboard;
REVOKE ALL ON SCHEMA raw, staging FROM moonwatch_dashboard;
