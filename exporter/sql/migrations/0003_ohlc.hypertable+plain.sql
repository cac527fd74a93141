-- OHLC where continuous aggregates are unavailable: the exporter materialises complete buckets
-- into these stores from a watermark (exporter/storage/rollup.py); the public ohlc_* views add
-- the newest buckets live from their source, like TimescaleDB's real-time aggregates.

CREATE TABLE movers_internal.rollup_state (
    name      text PRIMARY KEY,
    watermark timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO movers_internal.rollup_state (name) VALUES ('ohlc_1m'), ('ohlc_1h'), ('ohlc_1d');

-- Time ranges written below a watermark (late data), to be re-rolled by the next rollup.
CREATE TABLE movers_internal.rollup_invalidations (
    id   bigserial PRIMARY KEY,
    name text NOT NULL REFERENCES movers_internal.rollup_state (name),
    lo   timestamptz NOT NULL,
    hi   timestamptz NOT NULL
);

CREATE TABLE movers_internal.ohlc_1m_store (
    bucket     timestamptz NOT NULL,
    outcome_id text NOT NULL,
    open       double precision NOT NULL,
    high       double precision NOT NULL,
    low        double precision NOT NULL,
    close      double precision NOT NULL,
    bid        double precision,
    ask        double precision,
    last_trade double precision,
    volume_24h double precision,
    liquidity  double precision,
    samples    bigint NOT NULL,
    PRIMARY KEY (outcome_id, bucket)
);
CREATE INDEX ohlc_1m_store_bucket_idx ON movers_internal.ohlc_1m_store (bucket);
CREATE TABLE movers_internal.ohlc_1h_store (LIKE movers_internal.ohlc_1m_store INCLUDING ALL);
CREATE TABLE movers_internal.ohlc_1d_store (LIKE movers_internal.ohlc_1m_store INCLUDING ALL);
