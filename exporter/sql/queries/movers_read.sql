-- The stored ranking of one window, best first (the top-movers read of the CLI and metrics): the
-- watched markets' rows first, whatever their move, then the top of at least `min_move`, `limit`
-- rows in all (the export's series stay bounded however long the watchlist).
WITH watched AS (
    SELECT window_label, rank, category_rank, venue, market_id, outcome_id, title, outcome,
           category, url, price_then, price_now, move_pp, score, volume_24h, liquidity, spread,
           then_time, now_time, end_time, computed_at
    FROM movers
    WHERE window_label = %(window)s AND market_id = ANY(%(watched)s::text[])
      AND (%(category)s::text IS NULL OR category = %(category)s)
      AND (%(venue)s::text IS NULL OR venue = %(venue)s)
    ORDER BY rank LIMIT %(limit)s
), top AS (
    SELECT window_label, rank, category_rank, venue, market_id, outcome_id, title, outcome,
           category, url, price_then, price_now, move_pp, score, volume_24h, liquidity, spread,
           then_time, now_time, end_time, computed_at
    FROM movers
    WHERE window_label = %(window)s
      AND (%(category)s::text IS NULL OR category = %(category)s)
      AND (%(venue)s::text IS NULL OR venue = %(venue)s)
      AND abs(move_pp) >= %(min_move)s - 1e-6  -- a move equal to the floor, a hair under as a float
      AND outcome_id NOT IN (SELECT outcome_id FROM watched)
    ORDER BY rank LIMIT %(limit)s - (SELECT count(*) FROM watched)
)
SELECT * FROM watched
UNION ALL
SELECT * FROM top
ORDER BY rank
