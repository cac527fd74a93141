-- The movers refresh keeps one row per outcome instead of one per outcome and boundary: its
-- latest price, and its price at the start of each window (by the window's position in
-- movers.windows). Ranking then reads each outcome once, without joining a row per window to
-- its latest price. `share` is the share of the refresh (one per connection) the outcome belongs
-- to. Working state, rebuilt in full by the first refresh of every process: unlogged, never
-- backed up; half of each page left free so the refresh's updates stay on their page.
DROP TABLE movers_internal.window_prices;

CREATE UNLOGGED TABLE movers_internal.outcome_prices (
    outcome_id text PRIMARY KEY,
    share      integer NOT NULL,
    time       timestamptz,
    price      double precision,
    bid        double precision,
    ask        double precision,
    then_time  timestamptz[] NOT NULL,
    then_price double precision[] NOT NULL
) WITH (fillfactor = 50);

-- The shares look up what the stored ranking shows of each market for their own top rows, so
-- the merge only numbers and stores them.
ALTER TABLE movers_internal.share_movers
    ADD COLUMN market_id text NOT NULL,
    ADD COLUMN outcome   text NOT NULL,
    ADD COLUMN title     text NOT NULL,
    ADD COLUMN url       text,
    ADD COLUMN liquidity double precision;

-- Markets of more than two outcomes, which the refresh ranks by every outcome (a binary market
-- only by its first): few, found without reading every outcome.
CREATE INDEX outcomes_multi_idx ON outcomes (market_id) WHERE position >= 2;
