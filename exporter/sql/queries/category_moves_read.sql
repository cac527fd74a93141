-- The stored category moves, of one window or all.
SELECT window_label, category, markets, moved, moved_up, moved_down, mean_abs_move_pp,
       top_market_id, top_title, top_move_pp, computed_at
FROM category_moves WHERE %(window)s::text IS NULL OR window_label = %(window)s
ORDER BY window_label, mean_abs_move_pp DESC, category
