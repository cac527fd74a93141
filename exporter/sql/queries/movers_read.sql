-- The stored ranking of one window, best first (the top-movers read of the CLI and metrics):
-- its top `limit` of at least `min_move`, then the watched markets' rows not among them.
WITH top AS (
    SELECT window_label, rank, category_rank, venue, market_id, outcome_id, title, outcome,
           category, url, price_then, price_now, move_pp, score, volume_24h, liquidity, spread,
           then_time, now_time, end_time, computed_at
    FROM movers
    WHERE window_label = %(window)s
      AND (%(category)s::text IS NULL OR category = %(category)s)
      AND (%(venue)s::text IS NULL OR venue = %(venue)s)
      AND abs(move_pp) >= %(min_move)s
    ORDER BY rank LIMIT %(limit)s
)
SELECT * FROM top
UNION ALL
SELECT window_label, rank, category_rank, venue, market_id, outcome_id, title, outcome, category,
       url, price_then, price_now, move_pp, score, volume_24h, liquidity, spread, then_time,
       now_time, end_time, computed_at
FROM movers
WHERE window_label = %(window)s AND market_id = ANY(%(watched)s::text[])
  AND (%(category)s::text IS NULL OR category = %(category)s)
  AND (%(venue)s::text IS NULL OR venue = %(venue)s)
  AND outcome_id NOT IN (SELECT outcome_id FROM top)
ORDER BY rank
