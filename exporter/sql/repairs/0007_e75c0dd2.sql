-- Repair of a database that applied migration 0007 as first released (checksum e75c0dd2…).
-- 0007 was edited after its release (the shares lost computed_at and market_id), and 0008 was
-- written against the edited file (it adds market_id again). Both tables are working state that
-- every movers refresh empties first, so dropping the columns loses nothing. Never again: a
-- released migration is changed by a new one, and the runner now refuses an edited file.
ALTER TABLE movers_internal.share_movers DROP COLUMN computed_at, DROP COLUMN market_id;
ALTER TABLE movers_internal.share_categories DROP COLUMN computed_at;
