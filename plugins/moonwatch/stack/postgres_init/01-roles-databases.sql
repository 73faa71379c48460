-- Roles and databases (run as the admin role, in database `postgres`) by bootstrap.sh, the one
-- bootstrap of both the local launcher (`make up`) and Docker's postgres-init service.
-- moonwatch_loader owns the warehouse database `moonwatch`, moonwatch_dashboard may only
-- connect to it (read-only), and `airflow` owns Airflow's metadata database `airflow`.
\set ON_ERROR_STOP on
\getenv loader_password MOONWATCH_LOADER_PASSWORD
\getenv dashboard_password MOONWATCH_DASHBOARD_PASSWORD
\getenv airflow_password MOONWATCH_AIRFLOW_DB_PASSWORD

SELECT format('CREATE ROLE %I LOGIN', role_name)
FROM unnest(ARRAY['moonwatch_loader', 'moonwatch_dashboard', 'airflow']) AS role_name
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name)
\gexec

ALTER ROLE moonwatch_loader LOGIN PASSWORD :'loader_password';
ALTER ROLE moonwatch_dashboard LOGIN PASSWORD :'dashboard_password';
ALTER ROLE airflow LOGIN PASSWORD :'airflow_password';

SELECT 'CREATE DATABASE moonwatch OWNER moonwatch_loader'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'moonwatch')
\gexec
SELECT 'CREATE DATABASE airflow OWNER airflow'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'airflow')
\gexec

REVOKE ALL ON DATABASE moonwatch FROM PUBLIC;
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
-- template1 too: PUBLIC may connect there by default, and whatever lands in it is copied into
-- every database created later.
REVOKE ALL ON DATABASE postgres, template1 FROM PUBLIC;
GRANT CONNECT ON DATABASE moonwatch TO moonwatch_dashboard;
ALTER ROLE moonwatch_dashboard SET default_transaction_read_only = on;
