-- Each pair's prices minute by minute: at every minute either outcome has a candle, each side's
-- last close at or before it (carried forward), Kalshi's turned over for an inverse pair, and
-- the spread in pp (Polymarket less Kalshi). Read one pair and a time range at a time (Grafana's
-- Cross-venue dashboard): each side is an index range of its outcome's candles.
-- Created once migration 0011 made the pairs table (a schema stopped before it has no pairs).
DO $do$
BEGIN
    IF to_regclass('public.pairs') IS NULL THEN
        RETURN;
    END IF;
    EXECUTE $view$
        CREATE OR REPLACE VIEW pair_prices AS
        SELECT p.pair_id, p.label, t.bucket AS time, pm.close AS polymarket_price,
               CASE WHEN p.inverse THEN 1 - k.close ELSE k.close END AS kalshi_price,
               round((100 * (pm.close - CASE WHEN p.inverse THEN 1 - k.close
                                          ELSE k.close END))::numeric, 2)::float8 AS spread_pp
        FROM pairs p
        CROSS JOIN LATERAL (
            SELECT c.bucket FROM ohlc_1m c WHERE c.outcome_id = p.polymarket_outcome_id
            UNION
            SELECT c.bucket FROM ohlc_1m c WHERE c.outcome_id = p.kalshi_outcome_id
        ) t
        CROSS JOIN LATERAL (
            SELECT c.close FROM ohlc_1m c
            WHERE c.outcome_id = p.polymarket_outcome_id AND c.bucket <= t.bucket
            ORDER BY c.bucket DESC LIMIT 1
        ) pm
        CROSS JOIN LATERAL (
            SELECT c.close FROM ohlc_1m c
            WHERE c.outcome_id = p.kalshi_outcome_id AND c.bucket <= t.bucket
            ORDER BY c.bucket DESC LIMIT 1
        ) k
    $view$;
    COMMENT ON VIEW pair_prices IS
        'Each pair''s prices a minute (each side carried forward) and the spread in pp (Polymarket less Kalshi).';
END
$do$;
