"""Movers maths against real databases: carry-forward, staleness, filters, ranking, binary-once,
category aggregates, and the incremental refresh agreeing with the naive computation."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from exporter.config import MoversConfig, Settings
from exporter.errors import StorageError
from exporter.movers import MoversJob, MoversRefresher
from exporter.storage.database import Database as StorageDatabase
from exporter.storage.db import create_pool, prepare_schema
from exporter.storage.movers import naive_movers, read_categories, read_movers
from exporter.storage.turns import Turns
from tests.support.databases import Database

pytestmark = pytest.mark.db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
OPEN_FILTERS = {"polymarket": {"min_volume_24h": 0, "max_spread": None}}


@dataclass
class Book:
    """A database with the schema, a pool and helpers to describe markets and their prices."""

    db: Database
    pool: AsyncConnectionPool[Any]
    settings: Settings

    def market(
        self,
        native: str,
        *,
        venue: str = "polymarket",
        category: str = "Politics",
        status: str = "open",
        volume: float | None = 50_000.0,
        end_time: datetime | None = None,
        outcomes: int = 2,
    ) -> list[str]:
        """Insert a market; returns its outcome ids, position order."""
        mid = f"{venue}:{native}"
        ids = [f"{venue}:{native}-{i}" for i in range(outcomes)]
        with self.db.connect() as conn:
            conn.execute(
                "INSERT INTO markets (market_id, venue, native_id, title, category, status, url,"
                " end_time, volume_24h, first_seen, last_seen)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (mid, venue, native, f"Title {native}", category, status,
                 f"https://example.test/{native}", end_time, volume, NOW, NOW),
            )  # fmt: skip
            for position, oid in enumerate(ids):
                conn.execute(
                    "INSERT INTO outcomes (outcome_id, market_id, venue, native_id, name, position,"
                    " first_seen, last_seen) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (oid, mid, venue, oid, f"Outcome {position}", position, NOW, NOW),
                )
        return ids

    def prices(self, oid: str, *points: tuple[float, float], spread: float | None = 0.02) -> None:
        """``(minutes relative to NOW, price)`` rows for one outcome."""
        with self.db.connect() as conn:
            for minutes, price in points:
                half = None if spread is None else spread / 2
                conn.execute(
                    "INSERT INTO snapshots (time, outcome_id, price, bid, ask)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (
                        NOW + timedelta(minutes=minutes),
                        oid,
                        price,
                        None if half is None else max(price - half, 0),
                        None if half is None else min(price + half, 1),
                    ),
                )

    def refresher(self, **movers: Any) -> MoversRefresher:
        config = MoversConfig.model_validate({"filters": OPEN_FILTERS, **movers})
        return MoversRefresher(
            StorageDatabase(self.pool),
            config,
            timedelta(days=14),
            self.settings.database.write_concurrency,
        )

    async def movers(self, window: str, **kw: Any) -> dict[str, float]:
        async with self.pool.connection() as conn:
            rows = await read_movers(conn, window, limit=1000, **kw)
        return {r.outcome_id: round(r.move_pp, 6) for r in rows}


@pytest.fixture
async def book(db: Database) -> AsyncIterator[Book]:
    settings = db.settings()
    prepare_schema(settings)
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    try:
        yield Book(db, pool, settings)
    finally:
        await pool.close()


async def test_price_then_is_carried_forward_up_to_the_staleness_limit(book: Book) -> None:
    (a, _) = book.market("A")
    # 0.40 at -110 min, unchanged until 0.50 at -30 min, then 0.62 at -2 min.
    book.prices(a, (-110, 0.40), (-30, 0.50), (-2, 0.62))
    await book.refresher(staleness="1h").refresh(NOW)
    assert await book.movers("5m") == {a: 12.0}  # then = 0.50, carried from -30 to -5
    assert await book.movers("15m") == {a: 12.0}
    assert await book.movers("1h") == {a: 22.0}  # then = 0.40 from -110: 50 min before -60
    assert await book.movers("24h") == {}  # nothing known at -24 h


async def test_prices_older_than_the_staleness_limit_are_not_used(book: Book) -> None:
    (a, _) = book.market("A")
    (b, _) = book.market("B")
    book.prices(a, (-200, 0.40), (-2, 0.62))  # price then: 200 min old
    book.prices(b, (-70, 0.30), (-35, 0.50))  # price now: 35 min old
    await book.refresher(staleness="30m").refresh(NOW)
    for window in ("5m", "15m", "1h", "24h"):
        assert await book.movers(window) == {}
    await book.refresher(staleness="3h30m").refresh(NOW)
    assert await book.movers("5m") == {a: 22.0}  # b: unchanged since -35
    assert await book.movers("1h") == {a: 22.0, b: 20.0}


async def test_filters_leave_out_thin_wide_closed_and_resolving_markets(book: Book) -> None:
    (ok, _) = book.market("OK", volume=5_000)
    (thin, _) = book.market("THIN", volume=10)
    (wide, _) = book.market("WIDE", volume=5_000)
    (closed, _) = book.market("CLOSED", volume=5_000, status="closed")
    (ending, _) = book.market("ENDING", volume=5_000, end_time=NOW + timedelta(minutes=10))
    for oid in (ok, thin, closed, ending):
        book.prices(oid, (-20, 0.30), (-1, 0.40))
    book.prices(wide, (-20, 0.30), (-1, 0.40), spread=0.30)
    refresher = book.refresher(filters={"polymarket": {"min_volume_24h": 1000, "max_spread": 0.10}})
    await refresher.refresh(NOW)
    # ENDING resolves within 15 minutes: a move over 15 min or more may be deadline drift.
    assert await book.movers("5m") == {ok: 10.0, ending: 10.0}
    assert await book.movers("15m") == {ok: 10.0}
    refresher = book.refresher(
        filters={"polymarket": {"min_volume_24h": 0, "max_spread": None}},
        exclude_resolving_within_window=False,
    )
    await refresher.refresh(NOW)
    assert await book.movers("15m") == {ok: 10.0, thin: 10.0, wide: 10.0, ending: 10.0}


async def test_a_binary_market_appears_once_and_wider_markets_in_full(book: Book) -> None:
    yes, no = book.market("BIN")
    first, second, third = book.market("MULTI", outcomes=3)
    book.prices(yes, (-20, 0.30), (-1, 0.45))
    book.prices(no, (-20, 0.70), (-1, 0.55))
    book.prices(first, (-20, 0.20), (-1, 0.30))
    book.prices(second, (-20, 0.50), (-1, 0.45))
    book.prices(third, (-20, 0.30), (-1, 0.25))
    await book.refresher().refresh(NOW)
    assert await book.movers("15m") == {yes: 15.0, first: 10.0, second: -5.0, third: -5.0}


async def test_rank_by_score_weighs_volume_and_rank_by_move_does_not(book: Book) -> None:
    (small, _) = book.market("SMALL", volume=10)  # 10 pp * ln(11) = 24
    (big, _) = book.market("BIG", volume=10_000)  # 5 pp * ln(10001) = 46
    book.prices(small, (-20, 0.30), (-1, 0.40))
    book.prices(big, (-20, 0.30), (-1, 0.25))
    await book.refresher(rank_by="score").refresh(NOW)
    async with book.pool.connection() as conn:
        ranked = await read_movers(conn, "15m")
    assert [r.outcome_id for r in ranked] == [big, small]
    assert ranked[0].score == pytest.approx(5 * math.log1p(10_000))
    assert (ranked[0].price_then, ranked[0].price_now) == (pytest.approx(0.30), 0.25)
    await book.refresher(rank_by="move").refresh(NOW)
    async with book.pool.connection() as conn:
        ranked = await read_movers(conn, "15m")
    assert [(r.outcome_id, r.rank, r.score) for r in ranked] == [
        (small, 1, pytest.approx(10.0)),
        (big, 2, pytest.approx(5.0)),
    ]


async def test_keep_limits_rows_per_window_venue_and_category(book: Book) -> None:
    for i in range(5):
        (oid, _) = book.market(f"P{i}", category="Politics")
        book.prices(oid, (-20, 0.30), (-1, 0.31 + i / 100))
    (crypto, _) = book.market("C0", category="Crypto", volume=1)
    book.prices(crypto, (-20, 0.30), (-1, 0.31))
    await book.refresher(keep=2).refresh(NOW)
    async with book.pool.connection() as conn:
        ranked = await read_movers(conn, "15m")
        politics = await read_movers(conn, "15m", category="Politics")
        kalshi = await read_movers(conn, "15m", venue="kalshi")
    assert [r.market_id for r in ranked] == ["polymarket:P4", "polymarket:P3", "polymarket:C0"]
    # Ranks number the stored rows; the first `keep` are exact over every mover.
    assert [r.rank for r in ranked] == [1, 2, 3]
    assert [r.category_rank for r in politics] == [1, 2]
    assert kalshi == []


@pytest.mark.parametrize("rank_by", ["score", "move"])
async def test_a_small_keep_stores_the_head_of_the_full_ranking(book: Book, rank_by: str) -> None:
    """The refresh sorts only each group's candidates for its top (a histogram floor): what it
    keeps must be the head of the ranking that sorts every mover."""
    rng = random.Random(11)
    count = 15 if book.db.shared_session else 60
    for i in range(count):
        venue = rng.choice(["polymarket", "kalshi"])
        category = rng.choice(["Politics", "Sports"])
        # Few distinct volumes and prices: many equal scores and many in one score bucket.
        volume = rng.choice([None, 0.0, 1e3, 1.1e3, 5e4])
        (oid, *_) = book.market(f"M{i}", venue=venue, category=category, volume=volume)
        then, now = rng.choice([0.4, 0.5]), rng.choice([0.4, 0.43, 0.44, 0.5, 0.61, 0.62])
        book.prices(oid, (-70, then), (-1, now))
    filters = OPEN_FILTERS | {"kalshi": {"min_volume_24h": 0, "max_spread": None}}
    everything = {}
    for keep in (10_000, 3):
        await book.refresher(keep=keep, rank_by=rank_by, filters=filters).refresh(NOW)
        async with book.pool.connection() as conn:
            everything[keep] = {w: await read_movers(conn, w, limit=10_000) for w in ("15m", "1h")}
            categories = await read_categories(conn)
        everything[keep]["categories"] = categories  # type: ignore[assignment]
    for window in ("15m", "1h"):
        full, small = everything[10_000][window], everything[3][window]
        head = [m for m in full if m.category_rank <= 3]
        assert len(full) > len(small) > 0
        assert [(m.outcome_id, m.category_rank) for m in small] == [
            (m.outcome_id, m.category_rank) for m in head
        ]
        assert [m.rank for m in small] == list(range(1, len(small) + 1))
        assert [m.rank for m in small[:3]] == [m.rank for m in full[:3]]
    assert everything[3]["categories"] == everything[10_000]["categories"]


async def test_category_moves_count_weigh_and_name_the_top_mover(book: Book) -> None:
    (a, _) = book.market("A", volume=1_000)
    (b, _) = book.market("B", volume=3_000)
    (c, _) = book.market("C", volume=1_000)
    (d, _) = book.market("D", category="Sports", volume=None)
    book.prices(a, (-20, 0.30), (-1, 0.40))  # +10
    book.prices(b, (-20, 0.60), (-1, 0.54))  # -6
    book.prices(c, (-20, 0.50), (-1, 0.50))  # 0: counted, not moved
    book.prices(d, (-20, 0.50), (-1, 0.52))  # +2, no volume: plain mean
    await book.refresher(category_threshold_pp=5).refresh(NOW)
    async with book.pool.connection() as conn:
        categories = {c.category: c for c in await read_categories(conn, "15m")}
    politics = categories["Politics"]
    counts = (politics.markets, politics.moved, politics.moved_up, politics.moved_down)
    assert counts == (3, 2, 1, 1)
    assert politics.mean_abs_move_pp == pytest.approx((10 * 1000 + 6 * 3000) / 5000)
    # A: 10 * ln(1001) = 69 outranks B: 6 * ln(3001) = 48.
    assert (politics.top_market_id, politics.top_move_pp) == ("polymarket:A", pytest.approx(10))
    sports = categories["Sports"]
    assert (sports.markets, sports.moved, sports.mean_abs_move_pp) == (1, 0, pytest.approx(2))
    with book.db.connect() as conn:
        history = conn.execute(
            "SELECT count(*) FROM category_moves_history WHERE window_label = '15m'"
        ).fetchone()
    assert history == (2,)


@pytest.mark.parametrize("windows", [None, ["10m"], ["2h", "3m", "30m"]])
async def test_incremental_refreshes_agree_with_the_naive_computation(
    book: Book, windows: list[str] | None
) -> None:
    """For the default windows, one, and several out of order (the boundaries' statement is
    written for the configured number of windows)."""
    rng = random.Random(7)
    count = 12 if book.db.shared_session else 40
    ids = []
    for i in range(count):
        category = rng.choice(["Politics", "Sports", "Crypto"])
        (oid, _) = book.market(f"M{i}", category=category, volume=rng.choice([None, 100.0, 5e3]))
        ids.append(oid)
    for oid in ids:
        minutes = sorted(rng.sample(range(-180, -10), 12))
        book.prices(oid, *[(m, round(rng.uniform(0.05, 0.95), 2)) for m in minutes])
    refresher = book.refresher(
        staleness="45m", keep=1000, **({"windows": windows} if windows else {})
    )
    for step in range(4):
        now = NOW + timedelta(minutes=step * 3)
        # New rows since the last refresh, some late: committed after the previous refresh (3
        # minutes ago) passed their time, either within the overlap (another process's rows)
        # or reported as this process's writer reports what it stores.
        for oid in rng.sample(ids, count // 3):
            late = rng.choice([0.5, 3.25, 4.0])
            book.prices(oid, (step * 3 - late, round(rng.uniform(0.05, 0.95), 2)))
            if late == 4.0:
                refresher.rows_stored(now - timedelta(minutes=late))
        result = await refresher.refresh(now)
        assert result.full == (step == 0)
        async with book.pool.connection() as conn:
            expected = await naive_movers(conn, refresher.config, now)
            stored = [
                m
                for window in refresher.config.labels
                for m in await read_movers(conn, window, limit=10_000)
            ]
        assert sorted(stored, key=lambda m: (m.window_label, m.rank)) == expected
        assert len(expected) > count // 4  # a comparison of rankings, not of empty ones


async def test_rows_stored_late_are_read_again_by_the_next_refresh(book: Book) -> None:
    (a, _) = book.market("A")
    (b, _) = book.market("B")
    book.prices(a, (-30, 0.40), (-2, 0.62))
    book.prices(b, (-30, 0.50), (-2, 0.52))
    refresher = book.refresher()
    await refresher.refresh(NOW)
    # Held through an outage: rows 10 and 40 minutes old, stored only now. The first is the
    # 5m window's price then at NOW+1m; the second is older than any boundary's staleness.
    book.prices(a, (-10, 0.55))
    book.prices(b, (-40, 0.10), (-9, 0.30))
    refresher.rows_stored(NOW - timedelta(minutes=40))
    later = NOW + timedelta(minutes=1)
    result = await refresher.refresh(later)
    assert not result.full
    assert await book.movers("5m") == {a: 7.0, b: 22.0}
    async with book.pool.connection() as conn:
        expected = await naive_movers(conn, refresher.config, later)
        stored = [m for w in refresher.config.labels for m in await read_movers(conn, w)]
    assert sorted(stored, key=lambda m: (m.window_label, m.rank)) == expected


def _note_history(book: Book, oldest: datetime, outcome_ids: list[str] | None) -> None:
    """What a backfill's batch leaves for the refresh (``None``: an older exporter's note)."""
    with book.db.connect() as conn:
        conn.execute(
            "INSERT INTO movers_internal.history_written (oldest, newest, outcome_ids)"
            " VALUES (%s, %s, %s)",
            (oldest, oldest, outcome_ids),
        )


async def test_history_noted_for_some_outcomes_is_read_again_for_them_alone(book: Book) -> None:
    """A backfill's note names the outcomes it wrote: the next refresh reads their older rows
    again by their key and every other outcome's slices as usual, so a hot-set newcomer's week
    does not cost a reading of every outcome. (B's row, stored here without a note of its own,
    shows which outcomes were read.) A note without outcomes is read again for all."""
    (a, _) = book.market("A")
    (b, _) = book.market("B")
    book.prices(a, (-2, 0.62))
    book.prices(b, (-2, 0.52))
    refresher = book.refresher()
    await refresher.refresh(NOW)
    book.prices(a, (-10, 0.55))
    book.prices(b, (-10, 0.30))
    _note_history(book, NOW - timedelta(minutes=10), [a])
    later = NOW + timedelta(minutes=1)
    result = await refresher.refresh(later)
    assert not result.full
    assert await book.movers("5m") == {a: 7.0}
    _note_history(book, NOW - timedelta(minutes=10), None)
    latest = later + timedelta(minutes=1)
    assert not (await refresher.refresh(latest)).full
    assert await book.movers("5m") == {a: 7.0, b: 22.0}
    async with book.pool.connection() as conn:
        expected = await naive_movers(conn, refresher.config, latest)
        stored = [m for w in refresher.config.labels for m in await read_movers(conn, w)]
    assert sorted(stored, key=lambda m: (m.window_label, m.rank)) == expected


async def test_noted_history_reads_again_only_the_boundaries_it_can_change(book: Book) -> None:
    """History adds rows older than an outcome's live ones: a boundary whose stored price is as
    new as the newest point written, or whose slice the points miss, is not read again; the
    others are. (Rows stored here without a note of their own show which boundaries were read:
    C's history ends at its stored 5m price, B's before the 5m slice, D's after its boundary.)"""
    ids = {name: book.market(name)[0] for name in "ABCD"}
    for name in "ABD":
        book.prices(ids[name], (-2, 0.62))
    book.prices(ids["C"], (-8, 0.40), (-2, 0.62))
    refresher = book.refresher()
    await refresher.refresh(NOW)
    assert await book.movers("5m") == {ids["C"]: 22.0}
    # An unnoted row older than the last refresh's boundaries: only a read of the slice again
    # sees it.
    for name in "ABCD":
        book.prices(ids[name], (-7, 0.50))
    with book.db.connect() as conn:
        for name, oldest, newest in (("A", -120, -9), ("B", -240, -70), ("C", -120, -8),
                                     ("D", -3, -3)):  # fmt: skip
            conn.execute(
                "INSERT INTO movers_internal.history_written (oldest, newest, outcome_ids)"
                " VALUES (%s, %s, %s)",
                (NOW + timedelta(minutes=oldest), NOW + timedelta(minutes=newest), [ids[name]]),
            )
    later = NOW + timedelta(minutes=1)
    assert not (await refresher.refresh(later)).full
    # A had no price at the 5m boundary: read again, it is the row at -7 (the newest there).
    assert await book.movers("5m") == {ids["A"]: 12.0, ids["C"]: 22.0}


def refuse(book: Book, table: str, outcome_id: str) -> None:
    """Make the database refuse ``outcome_id``'s rows in ``table``: a statement storing one fails,
    and with it the transaction of that outcome's share of the refresh."""
    with book.db.connect() as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'refused %', NEW.outcome_id; END $$"
        )
        conn.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW"
            f" WHEN (NEW.outcome_id = '{outcome_id}') EXECUTE FUNCTION refuse()"
        )


def allow(book: Book, table: str) -> None:
    with book.db.connect() as conn:
        conn.execute(f"DROP TRIGGER refuse ON {table}")


async def stored_and_naive(book: Book, refresher: MoversRefresher, now: datetime) -> Any:
    async with book.pool.connection() as conn:
        expected = await naive_movers(conn, refresher.config, now)
        stored = [
            m for w in refresher.config.labels for m in await read_movers(conn, w, limit=10_000)
        ]
    return sorted(stored, key=lambda m: (m.window_label, m.rank)), expected


def moving_book(book: Book, count: int) -> list[str]:
    """``count`` markets whose YES outcome moves every ten minutes from two hours ago on."""
    rng = random.Random(5)
    ids = [
        book.market(f"M{i}", category=rng.choice(["Politics", "Sports"]))[0] for i in range(count)
    ]
    for oid in ids:
        book.prices(oid, *[(m, round(rng.uniform(0.05, 0.95), 2)) for m in range(-120, 0, 10)])
    return ids


@pytest.mark.parametrize(
    "table", ["movers_internal.outcome_prices", "movers_internal.share_movers"]
)
async def test_a_refresh_that_fails_midway_leaves_the_next_one_exact(
    book: Book, table: str
) -> None:
    """A failure in one share of the outcomes (moving its boundaries, or storing its top) fails
    the refresh; the other shares may have committed theirs. The ranking stays the previous one,
    and the next refresh, incremental, is exact again."""
    ids = moving_book(book, 10 if book.db.shared_session else 30)
    refresher = book.refresher(keep=1000)
    await refresher.refresh(NOW)
    before, _ = await stored_and_naive(book, refresher, NOW)
    for oid in ids:
        book.prices(oid, (0.5, 0.99))
    refuse(book, table, ids[0])
    with pytest.raises(StorageError, match="RaiseException: refused"):
        await refresher.refresh(NOW + timedelta(minutes=1))
    assert (await stored_and_naive(book, refresher, NOW))[0] == before
    allow(book, table)
    for oid in ids[::2]:
        book.prices(oid, (1.5, 0.01))
    later = NOW + timedelta(minutes=2)
    result = await refresher.refresh(later)
    assert not result.full
    stored, expected = await stored_and_naive(book, refresher, later)
    assert stored == expected
    assert {m.outcome_id for m in stored if m.window_label == "5m"} == set(ids)


async def test_a_failed_build_is_built_again(book: Book) -> None:
    """A full build (the clock went back) that fails after emptying the prices is redone by the
    next refresh, not moved forward from the marks of the state it lost."""
    ids = moving_book(book, 10 if book.db.shared_session else 30)
    refresher = book.refresher(keep=1000)
    await refresher.refresh(NOW)
    refuse(book, "movers_internal.outcome_prices", ids[0])
    with pytest.raises(StorageError, match="RaiseException: refused"):
        await refresher.refresh(NOW - timedelta(minutes=1))
    allow(book, "movers_internal.outcome_prices")
    later = NOW + timedelta(minutes=1)
    result = await refresher.refresh(later)
    assert result.full
    stored, expected = await stored_and_naive(book, refresher, later)
    assert stored == expected
    assert {m.window_label for m in stored} == {"15m", "1h"}  # 5m: unchanged since -10 min


async def test_a_refresh_waits_for_the_background_step_in_flight(book: Book) -> None:
    """A rollup step running when the refresh is due is let finish first (storage/turns.py);
    the refresh says how long it waited, apart from its own seconds, and /metrics shows it."""
    (a, _) = book.market("A")
    book.prices(a, (-20, 0.40), (-1, 0.50))
    turns = Turns()
    refresher = book.refresher()
    refresher.turns = turns
    job = MoversJob(refresher)
    release = asyncio.Event()

    async def step() -> None:
        async with turns.step():
            await release.wait()

    stepping = asyncio.create_task(step())
    await asyncio.sleep(0.05)
    refreshing = asyncio.create_task(job.run(NOW))
    await asyncio.sleep(0.4)
    assert not refreshing.done()
    release.set()
    result = await asyncio.wait_for(refreshing, 60)
    await stepping
    assert result["waited"] >= 0.3
    (gauge,) = [f for f in job.collect() if f.name == "movers_refresh_waited_seconds"]
    assert gauge.samples[0].value == pytest.approx(result["waited"], abs=1e-3)
    assert await book.movers("15m") == {a: 10.0}


async def test_a_move_equal_to_the_export_floor_is_exported(book: Book) -> None:
    """Prices are on a cent grid: 0.40 to 0.45 is 5 pp, computed 4.999999999999999."""
    (edge, _) = book.market("EDGE")
    book.prices(edge, (-20, 0.40), (-1, 0.45))
    await book.refresher().refresh(NOW)
    async with book.pool.connection() as conn:
        (read,) = await read_movers(conn, "15m", limit=5, min_abs_move_pp=5)
    assert read.outcome_id == edge
    assert read.move_pp < 5


async def test_watched_markets_are_ranked_kept_and_read_whatever_the_filters_say(
    book: Book,
) -> None:
    (ok, _) = book.market("OK", volume=5_000)
    (thin, _) = book.market("THIN", volume=10)
    (wide, _) = book.market("WIDE", volume=5_000)
    (small, _) = book.market("SMALL", volume=5_000)
    for oid in (ok, thin):
        book.prices(oid, (-20, 0.30), (-1, 0.40))
    book.prices(wide, (-20, 0.30), (-1, 0.40), spread=0.30)
    book.prices(small, (-20, 0.30), (-1, 0.305))
    watched = ["polymarket:THIN", "polymarket:WIDE", "polymarket:SMALL"]
    strict = {"polymarket": {"min_volume_24h": 1000, "max_spread": 0.10}}
    refresher = book.refresher(filters=strict, keep=1)
    refresher.watched = lambda: watched
    await refresher.refresh(NOW)
    # Kept beyond `keep` (1) and past the filters; the category counts only what passes.
    assert await book.movers("15m") == {ok: 10.0, thin: 10.0, wide: 10.0, small: 0.5}
    async with book.pool.connection() as conn:
        (politics,) = [c for c in await read_categories(conn, "15m")]
        assert (politics.markets, politics.moved) == (2, 1)  # OK and SMALL pass
        # The export: the watched markets first, whatever their move, then the top of at least
        # `min_abs_move_pp`, `limit` rows in all.
        read = await read_movers(conn, "15m", limit=4, min_abs_move_pp=3, watched=watched)
        assert {r.market_id for r in read} == {"polymarket:OK", *watched}
        read = await read_movers(conn, "15m", limit=3, min_abs_move_pp=3, watched=watched)
        assert {r.market_id for r in read} == set(watched)
        (top,) = await read_movers(conn, "15m", limit=1, min_abs_move_pp=3)
        assert top.market_id == "polymarket:OK"
        naive = await naive_movers(conn, refresher.config, NOW, watched)
    assert {(m.window_label, m.outcome_id, round(m.move_pp, 6)) for m in naive} == {
        (m.window_label, m.outcome_id, round(m.move_pp, 6))
        for w in ("5m", "15m", "1h", "24h")
        for m in await _read_all(book, w)
    }
    # Unwatched again: the filters apply.
    refresher.watched = list
    await refresher.refresh(NOW + timedelta(seconds=15))
    assert await book.movers("15m") == {ok: 10.0}


async def _read_all(book: Book, window: str) -> list[Any]:
    async with book.pool.connection() as conn:
        return await read_movers(conn, window, limit=1000)
