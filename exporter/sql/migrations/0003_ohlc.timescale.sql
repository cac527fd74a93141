-- OHLC as hierarchical, real-time continuous aggregates (1m -> 1h -> 1d) and compression
-- settings. Created WITH NO DATA; refresh, compression and retention policies are applied from
-- the configuration at every start (exporter/storage/policies.py).

CREATE MATERIALIZED VIEW ohlc_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', time) AS bucket,
       outcome_id,
       first(price, time)      AS open,
       max(price)              AS high,
       min(price)              AS low,
       last(price, time)       AS close,
       last(bid, time)         AS bid,
       last(ask, time)         AS ask,
       last(last_trade, time)  AS last_trade,
       last(volume_24h, time)  AS volume_24h,
       last(liquidity, time)   AS liquidity,
       count(*)                AS samples
FROM snapshots
GROUP BY time_bucket(INTERVAL '1 minute', time), outcome_id
WITH NO DATA;

CREATE MATERIALIZED VIEW ohlc_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', bucket) AS bucket,
       outcome_id,
       first(open, bucket)       AS open,
       max(high)                 AS high,
       min(low)                  AS low,
       last(close, bucket)       AS close,
       last(bid, bucket)         AS bid,
       last(ask, bucket)         AS ask,
       last(last_trade, bucket)  AS last_trade,
       last(volume_24h, bucket)  AS volume_24h,
       last(liquidity, bucket)   AS liquidity,
       sum(samples)::bigint      AS samples
FROM ohlc_1m
GROUP BY time_bucket(INTERVAL '1 hour', bucket), outcome_id
WITH NO DATA;

CREATE MATERIALIZED VIEW ohlc_1d
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket,
       outcome_id,
       first(open, bucket)       AS open,
       max(high)                 AS high,
       min(low)                  AS low,
       last(close, bucket)       AS close,
       last(bid, bucket)         AS bid,
       last(ask, bucket)         AS ask,
       last(last_trade, bucket)  AS last_trade,
       last(volume_24h, bucket)  AS volume_24h,
       last(liquidity, bucket)   AS liquidity,
       sum(samples)::bigint      AS samples
FROM ohlc_1h
GROUP BY time_bucket(INTERVAL '1 day', bucket), outcome_id
WITH NO DATA;

ALTER TABLE snapshots SET (timescaledb.compress,
                           timescaledb.compress_segmentby = 'outcome_id',
                           timescaledb.compress_orderby = 'time DESC');
ALTER TABLE trades SET (timescaledb.compress,
                        timescaledb.compress_segmentby = 'outcome_id',
                        timescaledb.compress_orderby = 'time DESC');
