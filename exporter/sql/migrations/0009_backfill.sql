-- History backfill (movers backfill): where each snapshot row came from, and how far each
-- outcome's history has been fetched.

-- 'live' rows are observed by the exporter (REST polls, streams); 'backfill' rows are points of
-- the venue's own price history, written only where no live row is (never over one). Adding a
-- column with a constant default rewrites nothing.
ALTER TABLE snapshots ADD COLUMN source text NOT NULL DEFAULT 'live';

-- One row per outcome and resolution (seconds between points): the span of its history that
-- is stored, grown one request window at a time, so a restarted backfill continues where it
-- stopped and a finished one asks nothing again. `note` says why an outcome has no points
-- (the venue does not know it, or its history is empty).
CREATE TABLE movers_internal.backfill_cursors (
    outcome_id   text NOT NULL,
    fidelity     integer NOT NULL CHECK (fidelity > 0),
    covered_from timestamptz NOT NULL,
    covered_to   timestamptz NOT NULL CHECK (covered_to >= covered_from),
    points       bigint NOT NULL DEFAULT 0,
    note         text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (outcome_id, fidelity)
);

-- What a backfill wrote, for the movers refresh (in whichever process it runs) to read from:
-- each committed batch adds its time range in the same transaction, and the refresh takes them
-- all (DELETE … RETURNING), so no batch is missed or read twice.
CREATE TABLE movers_internal.history_written (
    oldest timestamptz NOT NULL,
    newest timestamptz NOT NULL
);
