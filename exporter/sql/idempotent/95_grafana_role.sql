-- The read-only role Grafana connects as: SELECT on the public relations, nothing else. It is
-- created without a password (NOLOGIN; a database lets every role connect by default); the
-- exporter gives it one at start when MOVERS_GRAFANA_DB_PASSWORD is set
-- (database.grafana_password). Re-applied every start, so relations added by later migrations
-- are readable too. A server where the exporter's user may not create roles (some managed
-- services) skips this with a notice: create the role by hand there.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'movers_grafana') THEN
        CREATE ROLE movers_grafana NOLOGIN;
        ALTER ROLE movers_grafana SET default_transaction_read_only = on;
        ALTER ROLE movers_grafana SET statement_timeout = '30s';
    END IF;
    GRANT USAGE ON SCHEMA public TO movers_grafana;
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO movers_grafana;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'movers_grafana not created or granted (insufficient privilege): %', SQLERRM;
END
$$;
