-- When the venue created each market: a market new to the database is news only when the venue
-- listed it recently (a first start stores every market there is).
ALTER TABLE markets ADD COLUMN listed_at timestamptz;

-- Signals: markets listed, closed or resolved. Every process that writes `markets` (any
-- collector, a backfill, an operator's UPDATE) queues what changed, in the same transaction as
-- the change; the exporter's signals job takes the queue (DELETE … RETURNING), so an event is
-- never missed (a resolution while the exporter restarts still notifies) nor notified twice.

CREATE TABLE movers_internal.market_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    market_id text NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('listed', 'status')),
    status    text NOT NULL,
    previous  text,
    at        timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION movers_internal.note_market_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO movers_internal.market_events (market_id, kind, status)
        VALUES (NEW.market_id, 'listed', NEW.status);
    ELSE
        INSERT INTO movers_internal.market_events (market_id, kind, status, previous)
        VALUES (NEW.market_id, 'status', NEW.status, OLD.status);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER markets_listed AFTER INSERT ON markets
    FOR EACH ROW EXECUTE FUNCTION movers_internal.note_market_event();

-- Only a change of status: a discovery sweep rewrites every market's other fields each pass.
CREATE TRIGGER markets_status AFTER UPDATE OF status ON markets
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION movers_internal.note_market_event();
