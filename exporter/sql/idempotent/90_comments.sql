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
COMMENT ON TABLE movers IS
    'Latest top movers per window, rebuilt each refresh: the top movers.keep per window, venue and category.';
COMMENT ON COLUMN movers.window_label IS 'The window: 5m, 15m, 1h, 24h (movers.windows).';
COMMENT ON COLUMN movers.rank IS 'Position in the window''s stored ranking over every venue and category (1 = top); the first movers.keep ranks are exact over every mover.';
COMMENT ON COLUMN movers.category_rank IS 'Rank within the window, venue and category.';
COMMENT ON COLUMN movers.price_then IS 'Last price at or before computed_at - window (carried forward).';
COMMENT ON COLUMN movers.price_now IS 'Latest price.';
COMMENT ON COLUMN movers.move_pp IS 'Move in percentage points: 100 * (price_now - price_then).';
COMMENT ON COLUMN movers.score IS 'Ranking key: |move_pp| * ln(1 + volume_24h), or |move_pp| (movers.rank_by).';
COMMENT ON COLUMN movers.spread IS 'Ask - bid now (probability), null when a side is missing.';
COMMENT ON TABLE category_moves IS 'Per category and window: how many markets moved and by how much.';
COMMENT ON COLUMN category_moves.markets IS 'Markets ranked (open, passing the filters, with a price then).';
COMMENT ON COLUMN category_moves.moved IS 'Markets with |move| >= movers.category_threshold_pp.';
COMMENT ON COLUMN category_moves.mean_abs_move_pp IS 'Mean |move| weighted by 24 h volume (plain mean when no volume).';
COMMENT ON TABLE category_moves_history IS 'category_moves at each refresh, kept as long as snapshots.';
COMMENT ON TABLE alerts IS
    'Alert history: each Alertmanager notification (firing and resolved) once, from the webhook.';
COMMENT ON COLUMN alerts.time IS 'starts_at of a firing row, ends_at of a resolved one.';
COMMENT ON COLUMN alerts.labels IS 'Every label of the alert (alertname, severity, venue, ...).';
COMMENT ON COLUMN alerts.annotations IS 'summary, description, runbook_url, move_pp, ... as sent.';
COMMENT ON COLUMN alerts.fingerprint IS 'Alertmanager''s fingerprint of the label set.';
COMMENT ON COLUMN alerts.notifications IS 'Deliveries of this row (repeats and retries included).';
