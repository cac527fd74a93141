-- Which outcomes a backfill's batch wrote, with its time range: the movers refresh reads the
-- older rows again for those outcomes only (a hot-set newcomer's week of history no longer
-- makes the refresh read every outcome's slices again). NULL: any outcome (a note from an
-- exporter before this migration), read again for all as before.
ALTER TABLE movers_internal.history_written ADD COLUMN outcome_ids text[];
