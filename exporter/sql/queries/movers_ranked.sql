-- Included by movers_share.sql and movers_naive.sql after their own `prices` CTE (each
-- outcome's price now and at the start of every window): every eligible (outcome, window) pair
-- with its move, the counts and sums of the category aggregates (`fine`), and the kept top of
-- each window, venue and category with what the tables show of its market (`described`).
-- Watched markets (`watched`: the watchlists' market ids) are ranked and kept whatever the
-- filters say and wherever they rank; the category aggregates count only markets that pass.
--
-- Ranking sorts only the candidates for each group's top: a histogram of scores per group
-- (buckets of 1/8 of a doubling, monotone in the score) gives the lowest bucket that still holds
-- `keep` movers, and only rows from that bucket up are sorted. Every row below it scores
-- strictly less than `keep` rows of its group, so the kept top and its ranks are exact.
filters AS (
    SELECT * FROM unnest(%(venues)s::text[], %(min_volume)s::float8[], %(max_spread)s::float8[])
        AS f (venue, min_volume, max_spread)
), multi AS (
    -- Markets of more than two outcomes (rare: read from their own index).
    SELECT DISTINCT market_id FROM outcomes WHERE position >= 2
), candidates AS MATERIALIZED (
    -- Each outcome's row once, before it meets the windows (the planner cannot tell how few
    -- outcomes pass the filters, and would otherwise join the windows first).
    SELECT * FROM (
        SELECT p.outcome_id, m.venue, m.category, m.end_time, m.volume_24h,
               p.time AS now_time, p.price AS price_now, p.ask - p.bid AS spread, p.then_time,
               p.then_price, m.market_id = ANY(%(watched)s::text[]) AS watched,
               coalesce(coalesce(m.volume_24h, 0) >= f.min_volume
                        AND (f.max_spread IS NULL OR p.ask - p.bid <= f.max_spread + 1e-9),
                        false) AS passes
        FROM prices p
        JOIN outcomes o ON o.outcome_id = p.outcome_id
        JOIN markets m ON m.market_id = o.market_id AND m.status = 'open'
        JOIN filters f ON f.venue = m.venue
        LEFT JOIN multi x ON x.market_id = o.market_id
        WHERE (o.position = 0 OR x.market_id IS NOT NULL) AND p.time > %(now)s - %(staleness)s
    ) c
    WHERE c.passes OR c.watched
), eligible AS (
    SELECT w.label, c.outcome_id, c.venue, c.category, c.end_time, c.volume_24h, c.watched,
           c.passes,
           c.then_price[w.i] AS price_then, c.price_now, c.then_time[w.i] AS then_time,
           c.now_time, c.spread, 100 * (c.price_now - c.then_price[w.i]) AS move_pp
    FROM candidates c
    CROSS JOIN unnest(%(labels)s::text[], %(widths)s::interval[]) WITH ORDINALITY
        AS w (label, width, i)
    WHERE c.then_time[w.i] > %(now)s - w.width - %(staleness)s
      AND NOT (%(exclude_resolving)s AND c.end_time IS NOT NULL
               AND c.end_time > %(now)s AND c.end_time <= %(now)s + w.width)
), scored AS (
    SELECT e.*, s.score,
           CASE WHEN s.score > 0 THEN floor(8 * ln(s.score) / ln(2))::int
                ELSE -2147483648 END AS bucket
    FROM eligible e
    CROSS JOIN LATERAL (
        SELECT abs(e.move_pp) * CASE WHEN %(by_score)s
                                     THEN ln(1 + greatest(coalesce(e.volume_24h, 0), 0))
                                     ELSE 1 END AS score
    ) s
), fine AS (
    -- Per window, venue, category and score bucket: the counts and sums the category
    -- aggregates add up, and the histogram the floors come from.
    SELECT label, venue, category, bucket,
           count(*) AS markets,
           count(*) FILTER (WHERE move_pp <> 0) AS movers,
           count(*) FILTER (WHERE abs(move_pp) >= %(threshold)s) AS moved,
           count(*) FILTER (WHERE move_pp >= %(threshold)s) AS moved_up,
           count(*) FILTER (WHERE -move_pp >= %(threshold)s) AS moved_down,
           sum(abs(move_pp) * coalesce(volume_24h, 0)) AS weighted,
           sum(coalesce(volume_24h, 0)) AS volume,
           sum(abs(move_pp)) AS sizes
    FROM scored WHERE passes GROUP BY label, venue, category, bucket
), floors AS (
    SELECT label, venue, category,
           coalesce(max(bucket) FILTER (WHERE above >= %(keep)s), min(bucket)) AS bucket
    FROM (
        SELECT label, venue, category, bucket,
               sum(movers) OVER (PARTITION BY label, venue, category ORDER BY bucket DESC) AS above
        FROM fine
    ) h
    GROUP BY label, venue, category
), ranked AS (
    -- The ranking order of moves: best score first; ties by |move|, then id.
    SELECT s.*,
           row_number() OVER (PARTITION BY s.label, s.venue, s.category
                              ORDER BY s.score DESC, abs(s.move_pp) DESC, s.outcome_id)
               AS category_rank
    FROM scored s
    LEFT JOIN floors f ON f.label = s.label AND f.venue = s.venue AND f.category = s.category
    WHERE s.watched OR (s.passes AND s.move_pp <> 0 AND s.bucket >= f.bucket)
), described AS (
    -- The kept rows with what the tables show of their market, looked up by key for each row: a
    -- few thousand rows against every outcome and market. (`LIMIT 1` keeps each lookup a
    -- subquery by key, which the planner would otherwise turn into a hash join over every
    -- outcome.)
    SELECT r.*, o.market_id, o.outcome, m.title, m.url, m.liquidity
    FROM ranked r
    CROSS JOIN LATERAL (
        SELECT market_id, name AS outcome FROM outcomes WHERE outcome_id = r.outcome_id LIMIT 1
    ) o
    CROSS JOIN LATERAL (
        SELECT title, url, liquidity FROM markets WHERE market_id = o.market_id LIMIT 1
    ) m
    WHERE r.category_rank <= %(keep)s OR r.watched
)
