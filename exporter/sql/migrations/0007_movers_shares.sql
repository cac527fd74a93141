-- The movers refresh ranks its outcomes in shares, each on its own connection
-- (database.write_concurrency): every share's top of each window, venue and category, and its
-- sums for the category aggregates, wait here until one statement merges them into movers and
-- category_moves and empties these tables. Working state: unlogged, never backed up.
CREATE UNLOGGED TABLE movers_internal.share_movers (
    label       text NOT NULL,
    venue       text NOT NULL,
    outcome_id  text NOT NULL,
    category    text NOT NULL,
    price_then  double precision NOT NULL,
    price_now   double precision NOT NULL,
    move_pp     double precision NOT NULL,
    score       double precision NOT NULL,
    volume_24h  double precision,
    spread      double precision,
    then_time   timestamptz NOT NULL,
    now_time    timestamptz NOT NULL,
    end_time    timestamptz
);

CREATE UNLOGGED TABLE movers_internal.share_categories (
    label       text NOT NULL,
    category    text NOT NULL,
    markets     bigint NOT NULL,
    moved       bigint NOT NULL,
    moved_up    bigint NOT NULL,
    moved_down  bigint NOT NULL,
    weighted    double precision,
    volume      double precision,
    sizes       double precision
);
