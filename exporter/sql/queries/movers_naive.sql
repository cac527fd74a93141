-- The reference the refresh must agree with, and the baseline of its benchmark: both prices of
-- every open outcome looked up in the raw snapshots at query time, then ranked as the refresh
-- ranks them.
WITH prices AS (
    SELECT o.outcome_id, n.time, n.price, n.bid, n.ask,
           array_agg(t.time ORDER BY w.i) AS then_time,
           array_agg(t.price ORDER BY w.i) AS then_price
    FROM outcomes o
    CROSS JOIN LATERAL (
        SELECT time, price, bid, ask FROM snapshots
        WHERE outcome_id = o.outcome_id AND time <= %(now)s
        ORDER BY time DESC LIMIT 1
    ) n
    CROSS JOIN unnest(%(widths)s::interval[]) WITH ORDINALITY AS w (width, i)
    LEFT JOIN LATERAL (
        SELECT time, price FROM snapshots
        WHERE outcome_id = o.outcome_id AND time <= %(now)s - w.width
        ORDER BY time DESC LIMIT 1
    ) t ON true
    GROUP BY o.outcome_id, n.time, n.price, n.bid, n.ask
),
\ir movers_ranked.sql
, numbered AS (
    SELECT d.*, row_number() OVER (PARTITION BY d.label
                                   ORDER BY d.score DESC, abs(d.move_pp) DESC, d.outcome_id)
               AS rank
    FROM described d
)
SELECT label AS window_label, rank, category_rank, venue, market_id, outcome_id, title, outcome,
       category, url, price_then, price_now, move_pp, score, volume_24h, liquidity, spread,
       then_time, now_time, end_time, %(now)s AS computed_at
FROM numbered ORDER BY label, rank
