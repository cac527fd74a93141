"""The alert history's statement: notifications stored once per alert, status and start."""

from __future__ import annotations

from datetime import datetime

from psycopg.types.json import Jsonb

from exporter.model import StoredAlert
from exporter.storage.database import Database

_INSERT = """
INSERT INTO alerts (time, status, alertname, severity, venue, market_id, category, window_label,
                    summary, labels, annotations, fingerprint, starts_at, ends_at, generator_url,
                    receiver, first_notified, last_notified)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (fingerprint, starts_at, status) DO UPDATE
   SET last_notified = excluded.last_notified,
       notifications = alerts.notifications + 1,
       ends_at = coalesce(excluded.ends_at, alerts.ends_at)
"""


async def store_alerts(
    database: Database, alerts: list[StoredAlert], received_at: datetime
) -> None:
    """Upsert the alerts in one transaction."""
    rows = [
        (
            a.time, a.status, a.alertname, a.labels.get("severity"), a.labels.get("venue"),
            a.labels.get("market_id"), a.labels.get("category"), a.labels.get("window"),
            a.annotations.get("summary"), Jsonb(a.labels), Jsonb(a.annotations), a.fingerprint,
            a.starts_at, a.ends_at, a.generator_url, a.receiver, received_at, received_at,
        )
        for a in alerts
    ]  # fmt: skip
    async with database.transaction() as conn, conn.cursor() as cur:
        await cur.executemany(_INSERT, rows)
