-- Cross-venue pairs (pairs.file): the same question on Polymarket and Kalshi. The exporter keeps
-- this table as the file says (each pair resolved to its two outcomes); Grafana joins it with
-- the candles (the pair_prices view, idempotent/20_pairs.sql).
CREATE TABLE pairs (
    pair_id               text PRIMARY KEY,
    label                 text NOT NULL,
    polymarket_market_id  text NOT NULL,
    polymarket_outcome_id text NOT NULL,
    kalshi_market_id      text NOT NULL,
    kalshi_outcome_id     text NOT NULL,
    inverse               boolean NOT NULL,
    position              integer NOT NULL,
    updated_at            timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pairs IS 'Cross-venue pairs from pairs.file, each resolved to its Polymarket and Kalshi outcomes.';
COMMENT ON COLUMN pairs.inverse IS 'Kalshi''s YES answers the opposite question: its price counts as 1 - YES.';
COMMENT ON COLUMN pairs.position IS 'The pair''s place in the file.';
