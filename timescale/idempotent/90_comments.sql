-- The documented contract of the public relations (README "Database"), kept in the catalogue too.
COMMENT ON TABLE markets IS 'One row per market of either venue, upserted in place by discovery.';
COMMENT ON COLUMN markets.market_id IS 'polymarket:<conditionId> or kalshi:<ticker>.';
COMMENT ON COLUMN markets.native_id IS 'The venue''s own id (conditionId or ticker).';
COMMENT ON COLUMN markets.category IS 'Shared taxonomy: Politics, Elections, Sports, Crypto, ...';
COMMENT ON COLUMN markets.status IS 'upcoming, open, paused, closed, resolved or delisted.';
COMMENT ON COLUMN markets.volume_total IS 'Lifetime traded volume (USD; Kalshi: contracts).';
COMMENT ON COLUMN markets.volume_24h IS 'Volume of the last 24 h (USD; Kalshi: contracts).';
COMMENT ON COLUMN markets.first_seen IS 'When discovery first saw the market.';
COMMENT ON COLUMN markets.last_seen IS 'When discovery last saw the market listed.';
COMMENT ON TABLE outcomes IS 'Tradable outcomes of each market (Kalshi: the YES side only).';
COMMENT ON COLUMN outcomes.outcome_id IS 'polymarket:<token id> or kalshi:<ticker>.';
COMMENT ON COLUMN outcomes.position IS 'Index within the market; 0 is the first (YES) outcome.';
COMMENT ON TABLE snapshots IS
    'Prices per outcome, change-only: a row when price/bid/ask/last trade changed, or a heartbeat.';
COMMENT ON COLUMN snapshots.price IS
    'Displayed price 0..1: bid/ask midpoint, or last trade when the spread is wider than 0.10.';
COMMENT ON COLUMN snapshots.bid IS 'Best bid 0..1, null when there is none.';
COMMENT ON COLUMN snapshots.ask IS 'Best ask 0..1, null when there is none.';
COMMENT ON COLUMN snapshots.last_trade IS 'Last trade price 0..1.';
COMMENT ON COLUMN snapshots.volume_24h IS 'Market volume of the last 24 h at that time.';
COMMENT ON COLUMN snapshots.liquidity IS 'Market liquidity (USD) at that time, where published.';
COMMENT ON TABLE trades IS 'Executed trades, deduplicated by (venue, trade_id, time).';
COMMENT ON COLUMN trades.size IS 'Shares (Polymarket) or contracts (Kalshi).';
COMMENT ON COLUMN trades.side IS 'Taker side: buy or sell of this outcome.';
COMMENT ON COLUMN trades.trader IS 'Taker wallet where the venue publishes one (Polymarket).';
COMMENT ON COLUMN ohlc_1m.bucket IS 'Start of the bucket (UTC).';
COMMENT ON COLUMN ohlc_1m.open IS 'First price in the bucket.';
COMMENT ON COLUMN ohlc_1m.close IS 'Last price in the bucket.';
COMMENT ON COLUMN ohlc_1m.samples IS 'Snapshot rows in the bucket.';
