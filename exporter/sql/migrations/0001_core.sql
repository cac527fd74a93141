-- Metadata tables, raw time series and their indexes: the same on every rung of the ladder.
-- Never edit a landed migration: add the next number instead.

CREATE TABLE markets (
    market_id     text PRIMARY KEY,
    venue         text NOT NULL CHECK (venue IN ('polymarket', 'kalshi')),
    native_id     text NOT NULL,
    title         text NOT NULL,
    category      text NOT NULL DEFAULT 'Other',
    status        text NOT NULL
                  CHECK (status IN ('upcoming', 'open', 'paused', 'closed', 'resolved', 'delisted')),
    url           text,
    event_id      text,
    event_title   text,
    slug          text,
    end_time      timestamptz,
    volume_total  double precision,
    volume_24h    double precision,
    liquidity     double precision,
    open_interest double precision,
    tags          text[] NOT NULL DEFAULT '{}',
    first_seen    timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX markets_venue_status_idx ON markets (venue, status);
CREATE INDEX markets_category_idx ON markets (category, status);

CREATE TABLE outcomes (
    outcome_id text PRIMARY KEY,
    market_id  text NOT NULL REFERENCES markets (market_id) ON DELETE CASCADE,
    venue      text NOT NULL CHECK (venue IN ('polymarket', 'kalshi')),
    native_id  text NOT NULL,
    name       text NOT NULL,
    position   smallint NOT NULL CHECK (position >= 0),
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL
);
CREATE INDEX outcomes_market_idx ON outcomes (market_id, position);

-- Change-only: a row is written when price, bid, ask or last trade changed, plus a heartbeat.
-- NaN fails these checks too (PostgreSQL orders NaN above every number).
CREATE TABLE snapshots (
    time       timestamptz NOT NULL,
    outcome_id text NOT NULL,
    price      double precision NOT NULL CHECK (price >= 0 AND price <= 1),
    bid        double precision CHECK (bid >= 0 AND bid <= 1),
    ask        double precision CHECK (ask >= 0 AND ask <= 1),
    last_trade double precision CHECK (last_trade >= 0 AND last_trade <= 1),
    volume_24h double precision CHECK (volume_24h >= 0 AND volume_24h < 'Infinity'),
    liquidity  double precision CHECK (liquidity >= 0 AND liquidity < 'Infinity'),
    PRIMARY KEY (outcome_id, time)
);
CREATE INDEX snapshots_time_idx ON snapshots (time DESC);

CREATE TABLE trades (
    time       timestamptz NOT NULL,
    outcome_id text NOT NULL,
    venue      text NOT NULL CHECK (venue IN ('polymarket', 'kalshi')),
    trade_id   text NOT NULL,
    price      double precision NOT NULL CHECK (price >= 0 AND price <= 1),
    size       double precision NOT NULL CHECK (size >= 0 AND size < 'Infinity'),
    side       text CHECK (side IN ('buy', 'sell')),
    trader     text,
    PRIMARY KEY (venue, trade_id, time)
);
CREATE INDEX trades_outcome_time_idx ON trades (outcome_id, time DESC);
CREATE INDEX trades_time_idx ON trades (time DESC);
CREATE INDEX trades_trader_time_idx ON trades (trader, time DESC) WHERE trader IS NOT NULL;
