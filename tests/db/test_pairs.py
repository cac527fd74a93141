"""Cross-venue pairs against real databases: the file's pairs resolved to their outcomes (the
unknown, closed and mistyped ones counted and skipped), both prices and the spread after the
pair's orientation on /metrics, and the pair_prices view minute by minute."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from exporter.config.pairs import load_pairs
from exporter.pairs import PairsJob
from exporter.service import build_ingest
from exporter.sim import ManualClock, Simulator, load_scenario
from exporter.storage.database import Database as Pooled
from exporter.storage.db import create_pool, prepare_schema
from tests.support.databases import Database
from tests.support.ingest import migrated_writer

pytestmark = pytest.mark.db
NOW = datetime.now(UTC).replace(second=0, microsecond=0)

PAIRS = """
pairs:
  - polymarket: fed-december
    kalshi: FED-25DEC
    label: Fed cuts in December
  - polymarket: "0xfed"
    outcome: "no"
    kalshi: FED-25DEC
    orientation: inverse
  - polymarket: nowhere
    kalshi: FED-25DEC
  - polymarket: fed-december
    outcome: Maybe
    kalshi: FED-25DEC
  - polymarket: fed-december
    kalshi: OLD-24
"""


def _seed(db: Database) -> None:
    with db.connect(autocommit=True) as conn:
        for venue, native, slug, status, title in (
            ("polymarket", "0xfed", "fed-december", "open", "Fed cut in December?"),
            ("kalshi", "FED-25DEC", None, "open", "Fed cut in Dec 2025"),
            ("kalshi", "OLD-24", None, "resolved", "An old question"),
        ):
            conn.execute(
                "INSERT INTO markets (market_id, venue, native_id, slug, title, category, status,"
                " url, first_seen, last_seen) VALUES (%s, %s, %s, %s, %s, 'Economics', %s, %s,"
                " now(), now())",
                (f"{venue}:{native}", venue, native, slug, title, status,
                 f"https://{venue}.example/{native}"),
            )  # fmt: skip
            names = ["Yes", "No"] if venue == "polymarket" else ["Yes"]
            for position, name in enumerate(names):
                oid = f"{venue}:{native}" + (f"-{name}" if venue == "polymarket" else "")
                conn.execute(
                    "INSERT INTO outcomes (outcome_id, market_id, venue, native_id, name,"
                    " position, first_seen, last_seen) VALUES (%s, %s, %s, %s, %s, %s, now(),"
                    " now())",
                    (oid, f"{venue}:{native}", venue, oid, name, position),
                )
        # Polymarket Yes 0.40 then 0.45; Kalshi YES 0.50 throughout, a row every 3 minutes.
        for minutes in range(-30, 1):
            at = NOW + timedelta(minutes=minutes)
            rows = [("polymarket:0xfed-Yes", 0.40 if minutes < -10 else 0.45),
                    ("polymarket:0xfed-No", 0.60 if minutes < -10 else 0.55)]  # fmt: skip
            if minutes % 3 == 0:
                rows.append(("kalshi:FED-25DEC", 0.50))
            for oid, price in rows:
                conn.execute(
                    "INSERT INTO snapshots (time, outcome_id, price, bid, ask)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (at, oid, price, price - 0.01, price + 0.01),
                )


def test_pairs_resolve_price_and_read_minute_by_minute(db: Database, tmp_path: Path) -> None:
    settings = db.settings()
    prepare_schema(settings)
    _seed(db)
    path = tmp_path / "pairs.yaml"
    path.write_text(PAIRS)
    pairs = load_pairs(path)

    async def run() -> PairsJob:
        pool = create_pool(settings.database)
        await pool.open(wait=True)
        try:
            job = PairsJob(Pooled(pool), settings, pairs)
            await job.run(NOW + timedelta(seconds=30))
            await job.run(NOW + timedelta(seconds=30))  # the table kept once, not twice
            return job
        finally:
            await pool.close()

    job = asyncio.run(run())
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in job.collect() for s in family.samples
    }  # fmt: skip
    states = {dict(k)["state"]: v for (n, k), v in samples.items() if n == "movers_pairs"}
    assert states == {"active": 2, "unknown_market": 1, "unknown_outcome": 1, "closed": 1,
                      "over_cap": 0}  # fmt: skip
    spreads = {dict(k)["label"]: v for (n, k), v in samples.items()
               if n == "movers_pair_spread_pp"}  # fmt: skip
    # Polymarket Yes 45¢ against Kalshi's 50¢; Polymarket No 55¢ against 1 - 50¢ (inverse).
    assert spreads == {"Fed cuts in December": -5.0, "Fed cut in December?": 5.0}
    labels = next(dict(k) for (n, k), _ in samples.items() if n == "movers_pair_spread_pp"
                  and dict(k)["label"] == "Fed cuts in December")  # fmt: skip
    assert labels["polymarket_url"] == "https://polymarket.example/0xfed"
    assert labels["kalshi_url"] == "https://kalshi.example/FED-25DEC"
    with db.connect() as conn:
        kept = conn.execute("SELECT pair_id, inverse, position FROM pairs ORDER BY position")
        assert kept.fetchall() == [
            ("fed-december/Yes~FED-25DEC", False, 0), ("0xfed/no~FED-25DEC", True, 1),
        ]  # fmt: skip
        rows = conn.execute(
            "SELECT time, polymarket_price, kalshi_price, spread_pp FROM pair_prices"
            " WHERE pair_id = 'fed-december/Yes~FED-25DEC' AND time >= %s ORDER BY time",
            (NOW - timedelta(minutes=12),),
        ).fetchall()
    # Every minute Polymarket has a candle; Kalshi's (every 3 minutes) carried forward.
    assert [r[0] for r in rows] == [NOW - timedelta(minutes=m) for m in range(12, -1, -1)]
    assert {(r[1], r[2], r[3]) for r in rows[:2]} == {(0.40, 0.50, -10.0)}
    assert {(r[1], r[2], r[3]) for r in rows[2:]} == {(0.45, 0.50, -5.0)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "pairs:\n  - polymarket: a\n    kalshi: B\n    orientaton: inverse\n",
            "pairs.0.orientaton",
        ),
        (
            "pairs:\n  - polymarket: a\n    kalshi: B\n    orientation: upside\n",
            "pairs.0.orientation",
        ),
        (
            "pairs:\n  - polymarket: a\n    kalshi: B\n  - polymarket: a\n    kalshi: B\n",
            "the same pair as pairs.0",
        ),
        ("pairs:\n  - kalshi: B\n", "pairs.0.polymarket"),
        ("pairs: [\n", "not valid YAML"),
    ],
)
def test_a_pairs_file_typo_fails_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    from exporter.errors import ConfigError

    path = tmp_path / "pairs.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_pairs(path)
    with pytest.raises(ConfigError, match=r"pairs\.file"):
        load_pairs(tmp_path / "missing.yaml")


async def test_the_markets_of_the_pairs_are_always_hot(pg: Database, tmp_path: Path) -> None:
    """Both sides of a pair as fresh as the venues allow: discovery puts the paired markets in
    the hot set (streamed and polled at the hot cadence) whatever their volume."""
    scenario = load_scenario({
        "seed": 9, "universe": {"polymarket": 30, "kalshi": 40},
        "pairs": {"count": 3, "lookalikes": 0},
    })  # fmt: skip
    async with Simulator(scenario, clock=ManualClock(NOW)) as sim:
        assert sim.urls is not None
        venues = sim.urls.venues()
        for venue in ("polymarket", "kalshi"):
            venues[venue] |= {"hot_size": 1, "stream": {"enabled": False}}
        path = tmp_path / "pairs.yaml"
        twins = sim.world.twins
        path.write_text(yaml.safe_dump({"pairs": [
            {"polymarket": t.polymarket.slug, "kalshi": t.kalshi.key} for t in twins
        ]}))  # fmt: skip
        settings = pg.settings(venues=venues, pairs={"file": str(path)})
        async with migrated_writer(settings) as writer:
            ingest = build_ingest(settings, writer)
            try:
                assert ingest.polymarket is not None
                assert ingest.kalshi is not None
                await ingest.polymarket.discover()
                await ingest.kalshi.discover()
                poly_hot, kalshi_hot = set(ingest.polymarket.hot), set(ingest.kalshi.hot)
            finally:
                await ingest.aclose()
    assert {t.polymarket.key for t in twins} <= poly_hot
    assert {t.kalshi.key for t in twins} <= kalshi_hot
    assert len(poly_hot) <= 1 + len(twins)  # the top one by volume, and the pairs'
