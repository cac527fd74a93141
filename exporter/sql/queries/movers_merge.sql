-- The shares' tops and sums of one refresh, merged into the stored ranking and category moves
-- (in the transaction that emptied `movers` and `category_moves`: a reader never sees half of a
-- refresh). The shares' rows are already described: here they are only ranked over all shares
-- and numbered. The next refresh empties the shares' tables.
WITH described AS (
    SELECT * FROM (
        SELECT s.*,
               row_number() OVER (PARTITION BY s.label, s.venue, s.category
                                  ORDER BY s.score DESC, abs(s.move_pp) DESC, s.outcome_id)
                   AS category_rank
        FROM movers_internal.share_movers s
    ) r
    WHERE r.category_rank <= %(keep)s OR r.market_id = ANY(%(watched)s::text[])
), numbered AS (
    SELECT d.*, row_number() OVER (PARTITION BY d.label
                                   ORDER BY d.score DESC, abs(d.move_pp) DESC, d.outcome_id)
               AS rank
    FROM described d
), kept AS (
    INSERT INTO movers (window_label, rank, category_rank, venue, market_id, outcome_id, title,
        outcome, category, url, price_then, price_now, move_pp, score, volume_24h, liquidity,
        spread, then_time, now_time, end_time, computed_at)
    SELECT label, rank, category_rank, venue, market_id, outcome_id, title, outcome, category,
           url, price_then, price_now, move_pp, score, volume_24h, liquidity, spread, then_time,
           now_time, end_time, %(now)s
    FROM numbered
    RETURNING 1
), tops AS (
    SELECT DISTINCT ON (label, category) label, category, market_id, title, move_pp
    FROM numbered ORDER BY label, category, rank
), categories AS (
    SELECT label, category, sum(markets)::int AS markets, sum(moved)::int AS moved,
           sum(moved_up)::int AS moved_up, sum(moved_down)::int AS moved_down,
           coalesce(sum(weighted) / nullif(sum(volume), 0), sum(sizes) / sum(markets))
               AS mean_abs_move_pp
    FROM movers_internal.share_categories GROUP BY label, category
), stored AS (
    INSERT INTO category_moves (window_label, category, markets, moved, moved_up, moved_down,
                                mean_abs_move_pp, top_market_id, top_title, top_move_pp,
                                computed_at)
    SELECT c.label, c.category, c.markets, c.moved, c.moved_up, c.moved_down,
           c.mean_abs_move_pp, t.market_id, t.title, t.move_pp, %(now)s
    FROM categories c LEFT JOIN tops t ON t.label = c.label AND t.category = c.category
    RETURNING 1
), history AS (
    INSERT INTO category_moves_history (time, window_label, category, markets, moved,
                                        mean_abs_move_pp)
    SELECT %(now)s, label, category, markets, moved, mean_abs_move_pp FROM categories
    ON CONFLICT DO NOTHING
)
SELECT (SELECT count(*) FROM kept), (SELECT count(*) FROM stored)
