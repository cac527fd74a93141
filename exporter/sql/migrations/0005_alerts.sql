-- The alert history: every notification Alertmanager sent to the exporter's webhook, firing and
-- resolved, once each (a repeated or retried notification only bumps last_notified).

CREATE TABLE alerts (
    time          timestamptz NOT NULL,
    status        text NOT NULL CHECK (status IN ('firing', 'resolved')),
    alertname     text NOT NULL,
    severity      text,
    venue         text,
    market_id     text,
    category      text,
    window_label  text,
    summary       text,
    labels        jsonb NOT NULL,
    annotations   jsonb NOT NULL,
    fingerprint   text NOT NULL,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz,
    generator_url text,
    receiver      text,
    first_notified timestamptz NOT NULL,
    last_notified  timestamptz NOT NULL,
    notifications integer NOT NULL DEFAULT 1,
    PRIMARY KEY (fingerprint, starts_at, status)
);
CREATE INDEX alerts_time_idx ON alerts (time DESC);
CREATE INDEX alerts_market_idx ON alerts (market_id, time DESC) WHERE market_id IS NOT NULL;
CREATE INDEX alerts_alertname_idx ON alerts (alertname, time DESC);
