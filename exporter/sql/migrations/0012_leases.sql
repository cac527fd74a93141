-- Several collectors, one database: the singleton jobs (movers refresh, pairs, alert tuning,
-- market signals, maintenance) run on the collector holding the lease. Election is a session
-- advisory lock (released the moment its holder's connection ends); this row fences: each
-- election bumps the epoch, and every transaction of a singleton job first reads the row FOR
-- SHARE with the epoch it was elected with, so a collector that lost the lease cannot write
-- once another has taken it (the new leader's bump waits for its transactions in flight).
CREATE TABLE leases (
    name    text PRIMARY KEY,
    holder  text NOT NULL,
    epoch   bigint NOT NULL,
    since   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE leases IS 'Leadership of the singleton jobs among several collectors: who holds it, since when, and the fencing epoch.';
