"""`movers tune` against real databases: the replay's move at any instant is the exporter's own
(the naive ranking over the same rows), a scripted history gives the notifications the shipped
files send, with a what-if, and bad input exits 2 naming the problem."""

from __future__ import annotations

import asyncio
import json
import math
import random
import shutil
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from exporter.cli import main
from exporter.config import Settings
from exporter.storage.database import Database as Pooled
from exporter.storage.db import connect_async, create_pool, prepare_schema
from exporter.storage.movers import naive_movers
from exporter.storage.tuning import Eligibility, MoveBounds
from exporter.tuning import (
    TuneJob,
    alerting_files,
    concurrent,
    load_replay,
    move_segments,
    read_alerting,
)
from tests.support.databases import Database

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alertmanager" / "rules"
ALERTMANAGER = ROOT / "alertmanager" / "alertmanager.yml"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
VENUE_FILTERS = {"polymarket": {"min_volume_24h": 1000, "max_spread": 0.10},
                 "kalshi": {"min_volume_24h": 100, "max_spread": 0.10}}  # fmt: skip


def _market(
    conn: object, venue: str, native: str, *, volume: float = 50_000, outcomes: int = 2,
    end_time: datetime | None = None,
) -> list[str]:  # fmt: skip
    mid = f"{venue}:{native}"
    conn.execute(  # type: ignore[attr-defined]
        "INSERT INTO markets (market_id, venue, native_id, title, category, status, url,"
        " end_time, volume_24h, slug, first_seen, last_seen)"
        " VALUES (%s, %s, %s, %s, 'Politics', 'open', %s, %s, %s, %s, %s, %s)",
        (mid, venue, native, f"Market {native}", f"https://example.test/{native}", end_time,
         volume, native.lower(), NOW - timedelta(days=2), NOW),
    )  # fmt: skip
    ids = [f"{mid}-{i}" for i in range(outcomes)]
    for position, oid in enumerate(ids):
        conn.execute(  # type: ignore[attr-defined]
            "INSERT INTO outcomes (outcome_id, market_id, venue, native_id, name, position,"
            " first_seen, last_seen) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (oid, mid, venue, oid, f"Outcome {position}", position, NOW, NOW),
        )
    return ids


def _prices(conn: object, oid: str, rows: list[tuple[datetime, float, float | None]]) -> None:
    with conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.executemany(
            "INSERT INTO snapshots (time, outcome_id, price, bid, ask) VALUES (%s, %s, %s, %s, %s)",
            [(t, oid, p, None if s is None else max(p - s / 2, 0),
              None if s is None else min(p + s / 2, 1)) for t, p, s in rows],
        )  # fmt: skip


def _low_thresholds(tmp_path: Path, pp: float) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "thresholds.yml"
    data = yaml.safe_load(path.read_text())
    for rule in data["groups"][0]["rules"]:
        if rule.get("record") == "movers:alert_threshold_move_pp":
            rule["expr"] = f"vector({pp})"
    path.write_text(yaml.safe_dump(data))
    return rules


def _settings(db: Database) -> Settings:
    return db.settings(movers={"filters": VENUE_FILTERS})


def test_the_replayed_move_at_any_instant_is_the_exporter_s(db: Database, tmp_path: Path) -> None:
    """Random walks with jumps, gaps past the staleness, wide spreads, a thin market, a watched
    one, a market resolving soon and one of three outcomes: at instants drawn at random the
    exported markets whose move reached 1 pp, and their moves, are the naive ranking's."""
    settings = db.settings(movers={"filters": VENUE_FILTERS, "staleness": "20m"},
                           venues={"kalshi": {"watchlist": ["WATCH"]}})  # fmt: skip
    prepare_schema(settings)
    rng = random.Random(7)
    start = NOW - timedelta(hours=3)
    with db.connect(autocommit=True) as conn:
        plans = [
            ("polymarket", "P1", {}), ("polymarket", "P2", {}), ("kalshi", "K1", {"outcomes": 1}),
            ("kalshi", "K2", {"outcomes": 1}), ("polymarket", "THIN", {"volume": 10}),
            ("kalshi", "WATCH", {"outcomes": 1, "volume": 1}),
            ("polymarket", "SOON", {"end_time": NOW - timedelta(minutes=40)}),
            ("polymarket", "MULTI", {"outcomes": 3}),
        ]  # fmt: skip
        for venue, native, kw in plans:
            for oid in _market(conn, venue, native, **kw):  # type: ignore[arg-type]
                price, t, rows = rng.uniform(0.2, 0.8), start, []
                while t < NOW:
                    price = min(0.98, max(0.02, price + rng.choice([0, 0.004, -0.004, 0.03,
                                                                    -0.05, 0.08])))  # fmt: skip
                    spread = rng.choice([0.02, 0.02, 0.02, 0.15, None])
                    rows.append((t, round(price, 3), spread))
                    # Mostly a row a minute or two; now and then a silence past the staleness.
                    t += timedelta(seconds=rng.choice([30, 60, 90, 120, 1500]))
                _prices(conn, oid, rows)
    alerting = read_alerting(_low_thresholds(tmp_path, 1), ALERTMANAGER)
    since, until = NOW - timedelta(hours=2), NOW
    watched = ["kalshi:WATCH"]

    async def check() -> None:
        pool = create_pool(settings.database)
        await pool.open(wait=True)
        try:
            replay = await load_replay(Pooled(pool), settings, alerting, since, until)
        finally:
            await pool.close()
        markets = {m.market_id: m for m in replay.markets}
        async with await connect_async(settings.database) as conn:
            for _ in range(25):
                at = since + timedelta(seconds=rng.uniform(0, 7200))
                naive = await naive_movers(conn, settings.movers, at, watched)
                # Exported: a watched market's move of 1 pp (its floor), another's of at least
                # the export's 3 pp.
                expected = {
                    (m.market_id, m.window_label): round(m.move_pp, 6)
                    for m in naive
                    if abs(m.move_pp) >= (1 if m.market_id in watched else 3) - 1e-9
                }  # fmt: skip
                moment = at.timestamp()
                found = {
                    (market_id, window): move
                    for market_id, market in markets.items()
                    for window, segments in market.segments.items()
                    for s, e, move in segments
                    if s <= moment < e
                }
                # A market of several outcomes alerts once per window; its moves are each
                # outcome's, so only the pairs are compared for it.
                assert set(found) == set(expected), at
                assert {k: v for k, v in found.items() if "MULTI" not in k[0]} == {
                    k: v for k, v in expected.items() if "MULTI" not in k[0]
                }, at
        assert "polymarket:THIN" not in markets  # under its venue's volume filter
        assert "kalshi:WATCH" in markets  # watched: whatever the filters say

    asyncio.run(check())


def test_the_hours_read_hold_every_instant_a_move_reaches_its_bar(db: Database) -> None:
    """The replay reads rows only in the spans its hourly bounds give: for random prices with
    jumps and silences, windows from 5 minutes to a day and staleness not a whole hour or more
    than one, every instant where the exact move (every stored row) reaches its window's bar for
    the hour, a move or a score, lies in a span."""
    settings = _settings(db)
    prepare_schema(settings)
    rng = random.Random(11)
    start, until = NOW - timedelta(days=3), NOW
    since = NOW - timedelta(days=2) + timedelta(minutes=17)
    history: dict[str, list[tuple[float, float, float | None]]] = {}
    volumes: dict[str, float] = {}
    with db.connect(autocommit=True) as conn:
        for n in range(8):
            volumes[f"kalshi:K{n}-0"] = volume = rng.choice([150, 5_000, 2_000_000])
            [oid] = _market(conn, "kalshi", f"K{n}", outcomes=1, volume=volume)
            price, t, rows = rng.uniform(0.3, 0.7), start, []
            while t < until:
                step = rng.choice([0.0, 0.003, -0.003, 0.01, -0.01, 0.12, -0.12])
                price = min(0.98, max(0.02, price + step))
                rows.append((t, round(price, 3), 0.02))
                t += timedelta(minutes=rng.choice([1, 4, 15, 40, 75, 130]))
            _prices(conn, oid, rows)
            history[oid] = [(r[0].timestamp(), r[1], 0.02) for r in rows]
        # Still all day, a step at midnight: no single day ranges at all.
        volumes["kalshi:STEP-0"] = 5_000
        [oid] = _market(conn, "kalshi", "STEP", outcomes=1, volume=5_000)
        midnight = NOW.replace(hour=0) - timedelta(days=1)
        steps = [(start + timedelta(minutes=10 * k), 0.02) for k in range(432)]
        rows = [(t, 0.40 if t < midnight else 0.56, spread) for t, spread in steps]
        _prices(conn, oid, rows)
        history[oid] = [(r[0].timestamp(), r[1], 0.02) for r in rows]
        # A move of exactly a bar, 8 pp, whose prices single precision rounds 2e-6 pp closer.
        volumes["kalshi:EDGE-0"] = 5_000
        [oid] = _market(conn, "kalshi", "EDGE", outcomes=1, volume=5_000)
        step = since + timedelta(hours=30, minutes=7)
        rows = [(t, 0.62 if t < step else 0.70, spread) for t, spread in steps]
        _prices(conn, oid, rows)
        history[oid] = [(r[0].timestamp(), r[1], 0.02) for r in rows]
    windows = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1),
               "3h": timedelta(hours=3), "24h": timedelta(hours=24)}  # fmt: skip
    hours = [since.replace(minute=0) + timedelta(hours=h) for h in range(49)]
    bars = {label: {h: rng.choice([6.0, 9.0, 15.0]) for h in hours if rng.random() < 0.8}
            for label in windows}  # fmt: skip
    for label in windows:
        bars[label][step.replace(minute=0)] = 8.0
    eligibility = Eligibility(("polymarket", "kalshi"), [0.0, 0.0], [])

    async def check(staleness: timedelta, weighted: bool) -> int:
        scale = {o: math.log1p(v) if weighted else 1.0 for o, v in volumes.items()}
        score_bars = {label: {h: bar * (10 if weighted else 1) for h, bar in by_hour.items()}
                      for label, by_hour in bars.items()}  # fmt: skip
        pool = create_pool(settings.database)
        await pool.open(wait=True)
        try:
            database = Pooled(pool)
            async with database.connection() as conn:
                # The hours in two halves at once on two connections, where the server allows.
                bounds = MoveBounds(conn, eligibility=eligibility, windows=windows,
                                    staleness=staleness, since=since, until=until, least=3.0,
                                    database=concurrent(database, settings))  # fmt: skip
                spans = await bounds.spans(score_bars, weighted=weighted, min_abs=3.0)
        finally:
            await pool.close()
        covered: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        for span in spans:
            covered[(span.outcome_id, span.window)].append((span.start.timestamp(),
                                                            span.end.timestamp()))  # fmt: skip
        reached = 0
        for oid, rows in history.items():
            for label, width in windows.items():
                segments = move_segments(
                    rows, width=width.total_seconds(), lo=since.timestamp(),
                    hi=until.timestamp(), staleness=staleness.total_seconds(), floor=3.0,
                    max_spread=None,
                )  # fmt: skip
                for a, b, move in segments:
                    # Each hour of the segment, against that hour's bar.
                    hour = math.floor(a / 3600) * 3600
                    while hour < b:
                        lo, hi = max(a, hour), min(b, hour + 3600)
                        moment = datetime.fromtimestamp(hour, UTC)
                        bar = score_bars[label].get(moment)
                        if bar is not None and abs(move) * scale[oid] >= bar - 1e-9:
                            reached += 1
                            assert any(s <= lo and hi <= e for s, e in covered[(oid, label)]), (
                                oid,
                                label,
                                moment,
                                move,
                                staleness,
                            )
                        hour += 3600
        return reached

    for staleness in (timedelta(minutes=50), timedelta(hours=1), timedelta(minutes=100)):
        for weighted in (False, True):
            assert asyncio.run(check(staleness, weighted)) > 20


def _config(tmp_path: Path, db: Database, extra: str = "") -> Path:
    path = tmp_path / "movers.yaml"
    path.write_text(
        "database:\n"
        f"  url: {db.url}\n"
        f"  prepared_statements: {'false' if db.shared_session else 'true'}\n"
        # One shared session takes one statement at a time.
        f"  write_concurrency: {1 if db.shared_session else 2}\n"
        "logging:\n  format: json\n" + extra
    )
    return path


@pytest.fixture(autouse=True)
def _keep_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """`main` in this process would point structlog at pytest's captured stderr, closed once
    the test ends: later tests' logs would fail."""
    monkeypatch.setattr("exporter.cli.configure_logging", lambda *a, **k: None)


def _tune(config: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--config", str(config), "tune", "--rules", str(RULES),
                 "--alertmanager", str(ALERTMANAGER), *args])  # fmt: skip
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def scripted(db: Database) -> Database:
    """Three hours of a minute-by-minute price for two markets: Kalshi K +7 pp at -120 min and
    back at -60 min; Polymarket P +12 pp at -90 min (over 5m, 15m and 1h at once)."""
    prepare_schema(_settings(db))
    minutes = range(-180, 1)
    with db.connect(autocommit=True) as conn:
        (k,) = _market(conn, "kalshi", "K", outcomes=1)
        _prices(conn, k, [(NOW + timedelta(minutes=m), 0.57 if -120 <= m < -60 else 0.50, 0.02)
                          for m in minutes])  # fmt: skip
        p, _ = _market(conn, "polymarket", "P")
        _prices(conn, p, [(NOW + timedelta(minutes=m), 0.42 if m >= -90 else 0.30, 0.02)
                          for m in minutes])  # fmt: skip
    return db


def test_a_smaller_move_with_more_volume_takes_the_only_export_place(pg: Database) -> None:
    """The replay's second read: a 4 pp move (under every threshold) of a market with much more
    volume outranks a 6 pp one in the export's only place, so the 6 pp never alerts; with
    little volume it does not."""
    settings = pg.settings(movers={"filters": VENUE_FILTERS, "export": {"max_series": 1}})
    prepare_schema(settings)
    jump = NOW - timedelta(hours=1)
    minutes = [NOW - timedelta(hours=2) + timedelta(minutes=i) for i in range(120)]
    with pg.connect(autocommit=True) as conn:
        for native, volume, before, after, at in (
            ("SMALL", 200, 0.40, 0.46, jump), ("BIG", 10_000_000, 0.50, 0.54, jump),
        ):  # fmt: skip
            [oid] = _market(conn, "kalshi", native, volume=volume, outcomes=1)
            _prices(conn, oid, [(t, before if t < at else after, 0.02) for t in minutes])
    alerting = read_alerting(RULES, ALERTMANAGER)

    async def notified() -> dict[str, int]:
        pool = create_pool(settings.database)
        await pool.open(wait=True)
        try:
            replay = await load_replay(Pooled(pool), settings, alerting, NOW - timedelta(hours=2),
                                       NOW)  # fmt: skip
        finally:
            await pool.close()
        return {m["market_id"]: m["notifications"] for m in replay.run().top_markets(10)}

    assert asyncio.run(notified()) == {}
    with pg.connect(autocommit=True) as conn:
        conn.execute("UPDATE markets SET volume_24h = 150 WHERE market_id = 'kalshi:BIG'")
    assert asyncio.run(notified()) == {"kalshi:SMALL": 1}


def test_a_volume_spike_is_replayed_by_the_exporter_s_own_check(
    pg: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two days of $1,000 an hour, then $12,000 within ten minutes: the volume check (every
    5 minutes, the same query as the exporter's) finds it at 12 times the median; the market's
    cooldown (at least the 1 h window) makes it one notification. A what-if of factors."""
    prepare_schema(_settings(pg))
    with pg.connect(autocommit=True) as conn:
        (k,) = _market(conn, "kalshi", "K", outcomes=1)
        trades = [(NOW - timedelta(hours=h, minutes=30), 1_000) for h in range(50)]
        trades += [(NOW - timedelta(minutes=m), 4_000) for m in (180, 175, 170)]
        for i, (at, notional) in enumerate(trades):
            conn.execute(
                "INSERT INTO trades (time, outcome_id, venue, trade_id, price, size, side)"
                " VALUES (%s, %s, 'kalshi', %s, 0.5, %s, 'buy')",
                (at, k, f"v{i}", 2 * notional),
            )
    code, out, err = _tune(_config(tmp_path, pg), "--alert", "VolumeSpike", "--json", "--days",
                           "1", "--until", NOW.isoformat(), "--threshold", "3,20",
                           capsys=capsys)  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["notifications"] == 1
    # The check that saw the third trade, and the signals route's group_wait (5 s).
    assert report["sent"][0]["at"] == (NOW - timedelta(minutes=170, seconds=-5)).isoformat()
    assert report["signal"]["cooldown_seconds"] == 3600
    assert {r["threshold"]: r["notifications"] for r in report["what_if"]["rows"]} == {3: 1, 20: 0}


def test_markets_of_a_category_moving_together_give_the_surges_the_files_send(
    pg: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Five of six Politics markets move 6 pp at once: 5 moved markets over 15m (the files'
    count) and 83 % of the category fire CategorySurge once (its group's one message); 1h's
    count of 8 is not reached. A what-if of 15m's count."""
    prepare_schema(_settings(pg))
    minutes = range(-180, 1)
    with pg.connect(autocommit=True) as conn:
        for i in range(6):
            (oid,) = _market(conn, "kalshi", f"C{i}", outcomes=1)
            jump = -100 if i < 5 else 99_999
            _prices(conn, oid, [(NOW + timedelta(minutes=m), 0.56 if m >= jump else 0.50, 0.02)
                                for m in minutes])  # fmt: skip
    config = _config(tmp_path, pg)
    code, out, err = _tune(config, "--alert", "CategorySurge", "--json", "--days", "1",
                           "--until", NOW.isoformat(), "--window", "15m", "--threshold",
                           "3,6", capsys=capsys)  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["notifications"] == 1
    assert {w: r["notifications"] for w, r in report["windows"].items()} == {"15m": 1, "1h": 0}
    assert report["top_categories"] == [
        {"category": "Politics", "notifications": 1, "windows": ["15m"]}
    ]
    assert report["routes"][0]["group_by"] == ["alertname", "category", "window"]
    fired = datetime.fromisoformat(report["sent"][0]["at"])
    # The jump, the rule's 2 minutes, the group's 30 s wait (and a refresh's 15 s at most).
    assert (
        timedelta(seconds=150) <= fired - (NOW - timedelta(minutes=100)) <= timedelta(seconds=165)
    )
    rows = {r["moved_markets"]: r["window_notifications"] for r in report["what_if"]["rows"]}
    assert rows == {3: 1, 6: 0}
    code, out, _ = _tune(config, "--alert", "CategorySurge", "--days", "1", "--until",
                         NOW.isoformat(), capsys=capsys)  # fmt: skip
    assert code == 0
    assert "15m ≥ 5" in out
    assert "Politics" in out


FUND = "0x" + "ab" * 20


def test_stored_trades_give_the_whale_and_wallet_notifications_the_settings_send(
    pg: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whale sizes, the per-market cooldown, a watched wallet and the signals' route, as
    `movers tune --alert WhaleTrade|WalletTrade` replays them, with a what-if of sizes."""
    prepare_schema(_settings(pg))
    with pg.connect(autocommit=True) as conn:
        (k,) = _market(conn, "kalshi", "K", outcomes=1)
        p, _ = _market(conn, "polymarket", "P")
        trades = [
            (k, "kalshi", -170, 15_000, None),  # a whale
            (k, "kalshi", -165, 12_000, None),  # within K's 10-minute cooldown: held back
            (k, "kalshi", -150, 11_000, None),  # after it: a whale again
            (k, "kalshi", -100, 6_000, None),  # under 10,000: a whale only at 5,000
            (p, "polymarket", -120, 30_000, None),
            (p, "polymarket", -60, 50, FUND),  # the watched wallet: any size
        ]
        for i, (oid, venue, minutes, notional, trader) in enumerate(trades):
            conn.execute(
                "INSERT INTO trades (time, outcome_id, venue, trade_id, price, size, side, trader)"
                " VALUES (%s, %s, %s, %s, 0.5, %s, 'buy', %s)",
                (NOW + timedelta(minutes=minutes), oid, venue, f"t{i}", 2 * notional, trader),
            )
    config = _config(tmp_path, pg, f"signals:\n  wallets:\n    '{FUND}': Fund\n")
    common = ("--json", "--days", "1", "--until", NOW.isoformat())
    code, out, err = _tune(config, "--alert", "WhaleTrade", *common, "--threshold",
                           "5000,20000", capsys=capsys)  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["notifications"] == 3
    assert {v: r["notifications"] for v, r in report["venues"].items()} == {
        "polymarket": 1, "kalshi": 2,
    }  # fmt: skip
    assert report["routes"][0]["group_by"] == ["alertname", "venue", "market_id"]
    assert [(m["market_id"], m["notifications"]) for m in report["top_markets"]] == [
        ("kalshi:K", 2), ("polymarket:P", 1),
    ]  # fmt: skip
    rows = {r["threshold"]: r["notifications"] for r in report["what_if"]["rows"]}
    assert rows == {5000: 4, 20000: 1}
    code, out, err = _tune(config, "--alert", "WalletTrade", *common, capsys=capsys)
    assert code == 0, err
    wallet = json.loads(out)
    assert wallet["notifications"] == 1
    assert wallet["sent"][0]["markets"] == [{"market_id": "polymarket:P", "title": "Market P"}]
    code, out, _ = _tune(config, "--alert", "WhaleTrade", "--days", "1", "--until",
                         NOW.isoformat(), capsys=capsys)  # fmt: skip
    assert code == 0
    for shown in ("3 notifications", "kalshi ≥ 10,000", "Market K", "routed to markets"):
        assert shown in out


def test_a_scripted_history_gives_what_the_shipped_files_send(
    scripted: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, scripted)
    until = NOW.isoformat()
    code, out, err = _tune(config, "--json", "--days", "1", "--until", until,
                           "--window", "5m", "--threshold", "6,8,13", capsys=capsys)  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    # K: its +7 pp and its -7 pp over 5m, a group each (the first resolved 5 minutes after the
    # move left the window); P: one message with its 5m, 15m and 1h.
    assert report["notifications"] == 3
    assert report["busiest_day"] == {"date": "2026-11-20", "notifications": 3}
    assert {w: r["notifications"] for w, r in report["windows"].items()} == {
        "5m": 3, "15m": 1, "1h": 1, "24h": 0,
    }  # fmt: skip
    assert [(m["market_id"], m["notifications"]) for m in report["top_markets"]] == [
        ("kalshi:K", 2), ("polymarket:P", 1),
    ]  # fmt: skip
    assert report["routes"] == [{
        "route": "route.routes[3].routes[0]", "receiver": "markets",
        "group_by": ["alertname", "venue", "market_id"], "group_wait_seconds": 5.0,
        "group_interval_seconds": 10.0, "repeat_interval_seconds": 21600.0,
    }]  # fmt: skip
    rows = {r["threshold_pp"]: (r["notifications"], r["window_notifications"])
            for r in report["what_if"]["rows"]}  # fmt: skip
    # 6 pp: as shipped; 8: K's 7 pp is out; 13: P's 12 pp over 5m is out, its 15m and 1h stay.
    assert rows == {6: (3, 3), 8: (1, 1), 13: (1, 0)}
    code, out, _ = _tune(config, "--days", "1", "--until", until, capsys=capsys)
    assert code == 0
    for shown in ("3 notifications", "Market K", "5m ≥ 5 pp", "routed to markets"):
        assert shown in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alert", "Nope"], "no alert 'Nope'"),
        (["--alert", "MarketListed"], "MarketListed is not replayed"),
        (
            ["--alert", "CategorySurge", "--window", "5m", "--threshold", "3"],
            "'5m' is not a window CategorySurge has a count for",
        ),
        (["--window", "2m", "--threshold", "3"], "'2m' is not a window the exporter computes"),
        (["--window", "5m", "--threshold", "five"], "'five' is not a list of numbers"),
        (["--threshold", "5"], "needs --window"),
        (["--until", "2020-01-01T00:00:00Z"], "no stored prices between 2019-12-25"),
        (["--rules", "/nonexistent"], "/nonexistent: no such folder"),
        (["--since", "2026-11-21T00:00:00", "--until", "2026-11-20T00:00:00"], "is not before"),
        (["--alert", "LiquidityGap"], "LiquidityGap is not replayed"),
        (["--alert", "WhaleTrade", "--window", "5m"], "WhaleTrade has no window"),
        (["--alert", "WalletTrade", "--threshold", "5"], "WalletTrade has no threshold"),
        (["--alert", "WhaleTrade", "--threshold", "-3"], "each > 0"),
        (["--alert", "WhaleTrade"], "no stored trades between"),
        (["--alert", "VolumeSpike", "--threshold", "0.5"], "factors of the median, each > 1"),
        (["--alert", "VolumeSpike"], "no stored trades"),
    ],
)
def test_bad_input_exits_2_naming_the_problem(
    scripted: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
    message: str,
) -> None:  # fmt: skip
    code, _, err = _tune(_config(tmp_path, scripted), *args, capsys=capsys)
    assert code == 2
    assert message in err


def test_the_exporter_s_hourly_replay_is_what_tune_prints(
    scripted: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Alerts dashboard's counts (the exporter's replay, on /metrics) are `movers tune`'s."""
    files = {"rules": str(RULES), "alertmanager": str(ALERTMANAGER)}
    settings = scripted.settings(movers={"filters": VENUE_FILTERS}, tune=files)

    async def replayed() -> dict[tuple[str, str, str], float]:
        pool = create_pool(settings.database)
        await pool.open(wait=True)
        try:
            job = TuneJob(Pooled(pool), settings, alerting_files(settings.tune))
            # Nothing before the first replay.
            assert [s for family in job.collect() for s in family.samples] == []
            await job.run(NOW)
        finally:
            await pool.close()
        return {
            (s.name, s.labels["alertname"], s.labels["window"]): s.value
            for family in job.collect() for s in family.samples if "window" in s.labels
        }  # fmt: skip

    gauges = asyncio.run(replayed())
    per_day, busiest = "movers_tune_notifications_per_day", "movers_tune_busiest_day_notifications"
    code, out, _ = _tune(_config(tmp_path, scripted), "--json", "--until", NOW.isoformat(),
                         capsys=capsys)  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert gauges[(per_day, "MarketMoveLarge", "all")] == report["per_day_mean"] == 0.43
    assert gauges[(busiest, "MarketMoveLarge", "all")] == 3
    for window, row in report["windows"].items():
        assert gauges[(per_day, "MarketMoveLarge", window)] == row["per_day_mean"]
    code, out, _ = _tune(_config(tmp_path, scripted), "--alert", "CategorySurge", "--json",
                         "--until", NOW.isoformat(), capsys=capsys)  # fmt: skip
    assert code == 0
    surge = json.loads(out)
    assert gauges[(per_day, "CategorySurge", "all")] == surge["per_day_mean"]
    assert {w for a, w in [k[1:] for k in gauges] if a == "CategorySurge"} == {"all", "15m", "1h"}
    # No trade stored: the trade signals' replays count none.
    assert gauges[(per_day, "WhaleTrade", "all")] == gauges[(per_day, "WalletTrade", "all")] == 0
