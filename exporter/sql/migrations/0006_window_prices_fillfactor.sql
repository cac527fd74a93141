-- The movers refresh updates a sixth or more of movers_internal.window_prices every minute. Half
-- of each page left free lets those updates stay on their page (HOT: no index entry, no vacuum
-- needed to reuse the space), which about halves the cost of moving the boundaries.
ALTER TABLE movers_internal.window_prices SET (fillfactor = 50);
