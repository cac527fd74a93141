-- Exporter-managed OHLC (no continuous aggregates): one compute function per level, used both by
-- the rollup job (materialise complete buckets into movers_internal.ohlc_*_store) and by the
-- public views (live part above the watermark). Re-applied at every start.

CREATE OR REPLACE FUNCTION movers_internal.rollup_watermark(level text)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT r.watermark FROM movers_internal.rollup_state r WHERE r.name = level),
        '-infinity')
$$;

CREATE OR REPLACE FUNCTION movers_internal.ohlc_1m_compute(lo timestamptz, hi timestamptz)
RETURNS TABLE (bucket timestamptz, outcome_id text, open double precision,
               high double precision, low double precision, close double precision,
               bid double precision, ask double precision, last_trade double precision,
               volume_24h double precision, liquidity double precision, samples bigint)
LANGUAGE sql STABLE AS $$
    SELECT date_bin(INTERVAL '1 minute', s.time, TIMESTAMPTZ '2000-01-03 00:00:00+00'),
           s.outcome_id,
           (array_agg(s.price ORDER BY s.time))[1],
           max(s.price),
           min(s.price),
           (array_agg(s.price ORDER BY s.time DESC))[1],
           (array_agg(s.bid ORDER BY s.time DESC))[1],
           (array_agg(s.ask ORDER BY s.time DESC))[1],
           (array_agg(s.last_trade ORDER BY s.time DESC))[1],
           (array_agg(s.volume_24h ORDER BY s.time DESC))[1],
           (array_agg(s.liquidity ORDER BY s.time DESC))[1],
           count(*)
    FROM snapshots s
    WHERE s.time >= lo AND s.time < hi
    GROUP BY 1, 2
$$;

CREATE OR REPLACE VIEW ohlc_1m AS
    SELECT m.bucket, m.outcome_id, m.open, m.high, m.low, m.close, m.bid, m.ask, m.last_trade,
           m.volume_24h, m.liquidity, m.samples
    FROM movers_internal.ohlc_1m_store m
    WHERE m.bucket < movers_internal.rollup_watermark('ohlc_1m')
    UNION ALL
    SELECT * FROM movers_internal.ohlc_1m_compute(
        movers_internal.rollup_watermark('ohlc_1m'), 'infinity');

CREATE OR REPLACE FUNCTION movers_internal.ohlc_1h_compute(lo timestamptz, hi timestamptz)
RETURNS TABLE (bucket timestamptz, outcome_id text, open double precision,
               high double precision, low double precision, close double precision,
               bid double precision, ask double precision, last_trade double precision,
               volume_24h double precision, liquidity double precision, samples bigint)
LANGUAGE sql STABLE AS $$
    SELECT date_bin(INTERVAL '1 hour', o.bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00'),
           o.outcome_id,
           (array_agg(o.open ORDER BY o.bucket))[1],
           max(o.high),
           min(o.low),
           (array_agg(o.close ORDER BY o.bucket DESC))[1],
           (array_agg(o.bid ORDER BY o.bucket DESC))[1],
           (array_agg(o.ask ORDER BY o.bucket DESC))[1],
           (array_agg(o.last_trade ORDER BY o.bucket DESC))[1],
           (array_agg(o.volume_24h ORDER BY o.bucket DESC))[1],
           (array_agg(o.liquidity ORDER BY o.bucket DESC))[1],
           sum(o.samples)::bigint
    FROM ohlc_1m o
    WHERE o.bucket >= lo AND o.bucket < hi
    GROUP BY 1, 2
$$;

CREATE OR REPLACE VIEW ohlc_1h AS
    SELECT m.bucket, m.outcome_id, m.open, m.high, m.low, m.close, m.bid, m.ask, m.last_trade,
           m.volume_24h, m.liquidity, m.samples
    FROM movers_internal.ohlc_1h_store m
    WHERE m.bucket < movers_internal.rollup_watermark('ohlc_1h')
    UNION ALL
    SELECT * FROM movers_internal.ohlc_1h_compute(
        movers_internal.rollup_watermark('ohlc_1h'), 'infinity');

CREATE OR REPLACE FUNCTION movers_internal.ohlc_1d_compute(lo timestamptz, hi timestamptz)
RETURNS TABLE (bucket timestamptz, outcome_id text, open double precision,
               high double precision, low double precision, close double precision,
               bid double precision, ask double precision, last_trade double precision,
               volume_24h double precision, liquidity double precision, samples bigint)
LANGUAGE sql STABLE AS $$
    SELECT date_bin(INTERVAL '1 day', o.bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00'),
           o.outcome_id,
           (array_agg(o.open ORDER BY o.bucket))[1],
           max(o.high),
           min(o.low),
           (array_agg(o.close ORDER BY o.bucket DESC))[1],
           (array_agg(o.bid ORDER BY o.bucket DESC))[1],
           (array_agg(o.ask ORDER BY o.bucket DESC))[1],
           (array_agg(o.last_trade ORDER BY o.bucket DESC))[1],
           (array_agg(o.volume_24h ORDER BY o.bucket DESC))[1],
           (array_agg(o.liquidity ORDER BY o.bucket DESC))[1],
           sum(o.samples)::bigint
    FROM ohlc_1h o
    WHERE o.bucket >= lo AND o.bucket < hi
    GROUP BY 1, 2
$$;

CREATE OR REPLACE VIEW ohlc_1d AS
    SELECT m.bucket, m.outcome_id, m.open, m.high, m.low, m.close, m.bid, m.ask, m.last_trade,
           m.volume_24h, m.liquidity, m.samples
    FROM movers_internal.ohlc_1d_store m
    WHERE m.bucket < movers_internal.rollup_watermark('ohlc_1d')
    UNION ALL
    SELECT * FROM movers_internal.ohlc_1d_compute(
        movers_internal.rollup_watermark('ohlc_1d'), 'infinity');

COMMENT ON VIEW ohlc_1m IS
    'OHLC per outcome and minute: materialised buckets below the watermark plus live buckets.';
COMMENT ON VIEW ohlc_1h IS 'OHLC per outcome and hour, rolled up from ohlc_1m.';
COMMENT ON VIEW ohlc_1d IS 'OHLC per outcome and UTC day, rolled up from ohlc_1h.';
