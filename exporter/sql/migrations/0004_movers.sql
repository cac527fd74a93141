-- Movers: the latest ranking per window, category aggregates and their history, plus the
-- refresh's working state (each outcome's price at now and at each window's start).

CREATE TABLE movers (
    window_label text NOT NULL,
    rank         integer NOT NULL CHECK (rank >= 1),
    category_rank integer NOT NULL CHECK (category_rank >= 1),
    venue        text NOT NULL,
    market_id    text NOT NULL,
    outcome_id   text NOT NULL,
    title        text NOT NULL,
    outcome      text NOT NULL,
    category     text NOT NULL,
    url          text,
    price_then   double precision NOT NULL,
    price_now    double precision NOT NULL,
    move_pp      double precision NOT NULL,
    score        double precision NOT NULL,
    volume_24h   double precision,
    liquidity    double precision,
    spread       double precision,
    then_time    timestamptz NOT NULL,
    now_time     timestamptz NOT NULL,
    end_time     timestamptz,
    computed_at  timestamptz NOT NULL,
    PRIMARY KEY (window_label, outcome_id)
);
CREATE INDEX movers_rank_idx ON movers (window_label, rank);
CREATE INDEX movers_category_idx ON movers (window_label, category, category_rank);

CREATE TABLE category_moves (
    window_label     text NOT NULL,
    category         text NOT NULL,
    markets          integer NOT NULL,
    moved            integer NOT NULL,
    moved_up         integer NOT NULL,
    moved_down       integer NOT NULL,
    mean_abs_move_pp double precision NOT NULL,
    top_market_id    text,
    top_title        text,
    top_move_pp      double precision,
    computed_at      timestamptz NOT NULL,
    PRIMARY KEY (window_label, category)
);

CREATE TABLE category_moves_history (
    time             timestamptz NOT NULL,
    window_label     text NOT NULL,
    category         text NOT NULL,
    markets          integer NOT NULL,
    moved            integer NOT NULL,
    mean_abs_move_pp double precision NOT NULL,
    PRIMARY KEY (window_label, category, time)
);
CREATE INDEX category_moves_history_time_idx ON category_moves_history (time DESC);

-- Working state, rebuilt in full by the first refresh of every process: unlogged, never backed up.
CREATE UNLOGGED TABLE movers_internal.window_prices (
    boundary   text NOT NULL,
    outcome_id text NOT NULL,
    time       timestamptz NOT NULL,
    price      double precision NOT NULL,
    bid        double precision,
    ask        double precision,
    PRIMARY KEY (boundary, outcome_id)
);
