-- One share of the outcomes (those whose id hashes to `share` of `shares`), ranked on its own
-- connection while the other shares are ranked on theirs: its top `keep` of every window, venue
-- and category, and its sums for the category aggregates. Every row of a group's top over all
-- outcomes is in its share's top, so movers_merge.sql ranks the shares' tops into the exact
-- ranking. The prices are the share's boundaries, moved by the advance statement just before.
WITH prices AS (
    SELECT outcome_id, time, price, bid, ask, then_time, then_price
    FROM movers_internal.outcome_prices WHERE share = %(share)s
),
\ir movers_ranked.sql
, kept AS (
    INSERT INTO movers_internal.share_movers (label, venue, market_id, outcome_id, title, outcome,
        category, url, price_then, price_now, move_pp, score, volume_24h, liquidity, spread,
        then_time, now_time, end_time)
    SELECT label, venue, market_id, outcome_id, title, outcome, category, url, price_then,
           price_now, move_pp, score, volume_24h, liquidity, spread, then_time, now_time, end_time
    FROM described
    RETURNING 1
), sums AS (
    INSERT INTO movers_internal.share_categories (label, category, markets, moved, moved_up,
                                                  moved_down, weighted, volume, sizes)
    SELECT label, category, sum(markets), sum(moved), sum(moved_up), sum(moved_down),
           sum(weighted), sum(volume), sum(sizes)
    FROM fine GROUP BY label, category
    RETURNING 1
)
SELECT (SELECT count(*) FROM kept), (SELECT count(*) FROM sums)
