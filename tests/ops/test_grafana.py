"""Grafana provisioning and dashboards: structure, the read-only role, and every SQL panel,
annotation and variable query executed against native PostgreSQL and TimescaleDB filled by a
simulator run (macros expanded as Grafana documents them, tests/grafana.py)."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from exporter.alerts import parse_notification
from exporter.sim import ManualClock, Simulator, load_scenario
from exporter.storage.alerts import store_alerts
from exporter.storage.database import Database as Store
from exporter.storage.db import create_pool, prepare_schema
from tests.support.databases import Database
from tests.support.grafana import (
    REPO,
    TimeRange,
    dashboards,
    expand_sql,
    panels,
    resolve_variables,
    run_query,
    schema_errors,
)

PROVISIONING = REPO / "grafana" / "provisioning"
CURRENT_TYPES = {
    "table", "barchart", "candlestick", "timeseries", "stat", "state-timeline", "bargauge",
    "gauge", "piechart", "text", "row", "histogram", "heatmap",
}  # fmt: skip
LEGACY_TYPES = {"graph", "singlestat", "table-old", "grafana-piechart-panel"}


def _datasource_uids() -> dict[str, str]:
    config = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text())
    return {d["uid"]: d["type"] for d in config["datasources"]}


def _refs(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "datasource" in node and isinstance(node["datasource"], dict):
            yield node["datasource"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_checked_in_dashboards_are_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("grafana_build", REPO / "grafana" / "build.py")
    assert spec is not None
    assert spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    sys.modules["grafana_build"] = build
    spec.loader.exec_module(build)
    rendered = build.render()
    assert set(rendered) == set(dashboards())
    for name, text in rendered.items():
        assert (REPO / "grafana" / "dashboards" / name).read_text() == text, (
            f"{name} differs: run .venv/bin/python grafana/build.py"
        )


def test_dashboards_reference_datasources_by_uid_and_use_current_panels() -> None:
    uids = _datasource_uids()
    boards = dashboards()
    assert len(boards) == 9
    assert len({b["uid"] for b in boards.values()}) == len(boards)
    titles = {b["title"] for b in boards.values()}
    assert titles == {"Top Movers", "Category Trends", "Market Detail", "Ingest Health",
                      "Traders", "Alerts", "Signals", "Hot Markets", "Cross-venue"}  # fmt: skip
    for name, board in boards.items():
        text = (REPO / "grafana" / "dashboards" / name).read_text()
        assert "${DS_" not in text
        assert "__inputs" not in board
        assert board["schemaVersion"] == 41
        for ref in _refs(board):
            if ref.get("uid") == "-- Grafana --":
                continue
            assert ref["uid"] in uids, (name, ref)
            assert ref["type"] == uids[ref["uid"]], (name, ref)
        for panel in panels(board):
            assert panel["type"] in CURRENT_TYPES, (name, panel["type"])
            assert panel["type"] not in LEGACY_TYPES
            assert panel["title"], name
            assert panel["description"], (name, panel["title"])
            assert panel["fieldConfig"]["defaults"].get("noValue"), (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert (target.get("rawSql") or target.get("expr", "")).strip()
            if panel["type"] in {"timeseries", "stat", "barchart", "bargauge", "candlestick"}:
                assert panel["fieldConfig"]["defaults"].get("unit"), (name, panel["title"])
        for variable in board["templating"].get("list", []):
            assert str(variable.get("query", "")).strip(), (name, variable["name"])


def test_links_resolve_to_existing_dashboards() -> None:
    boards = dashboards()
    uids = {b["uid"] for b in boards.values()}
    variables = {
        b["uid"]: {v["name"] for v in b["templating"].get("list", [])} for b in boards.values()
    }
    found = 0
    for board in boards.values():
        text = str(board)
        for uid, query in re.findall(r"/d/([a-z-]+)\?([^'\"]*)", text):
            found += 1
            assert uid in uids, uid
            for var in re.findall(r"var-([a-z_]+)=", query):
                assert var in variables[uid], (uid, var)
    assert found >= 4


def test_provisioning_files_are_complete_and_hold_no_secret() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text())
    (sql,) = [d for d in datasources["datasources"] if d["type"] == "grafana-postgresql-datasource"]
    assert sql["user"] == "movers_grafana"
    assert sql["secureJsonData"]["password"] == "$GRAFANA_DB_PASSWORD"
    assert sql["jsonData"]["timescaledb"] is True
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["folder"]
    assert provider["allowUiUpdates"] is False
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


@pytest.mark.db
def test_the_grafana_role_reads_the_public_relations_and_nothing_else(pg: Database) -> None:
    settings = pg.settings(database={"grafana_password": "pw"})
    prepare_schema(settings)
    url = pg.url.replace("postgresql://postgres@", "postgresql://movers_grafana:pw@")
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM movers").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (0,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO alerts DEFAULT VALUES")
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM markets")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM movers_internal.schema_migrations")


# --- every SQL query, executed ---------------------------------------------------------------


async def _fill(db: Database, folder: Path) -> None:
    """A simulator run through `movers run --once` (twice: the second refresh ranks moves against
    the older prices seeded in between), plus an alert for the busiest market."""
    start = datetime.now(UTC) - timedelta(hours=1)
    scenario = load_scenario({"seed": 5, "universe": {"polymarket": 20, "kalshi": 20}})
    async with Simulator(scenario, clock=ManualClock(start)) as sim:
        sim.advance(3600)
        assert sim.urls is not None
        venues = sim.urls.venues()
        venues["kalshi"]["requests_per_second"] = 50
        config = folder / "movers.yaml"
        database = {"prepared_statements": not db.shared_session,
                    "write_concurrency": 1 if db.shared_session else 2}  # fmt: skip
        # Two cross-venue pairs of the simulator's markets (one inverse) for Cross-venue.
        kalshi = [m for m in sim.world.kalshi_markets if not m.event.multivariate]
        pairs = folder / "pairs.yaml"
        pairs.write_text(yaml.safe_dump({"pairs": [
            {"polymarket": sim.world.poly_markets[0].condition_id, "kalshi": kalshi[0].ticker},
            {"polymarket": sim.world.poly_markets[1].condition_id, "kalshi": kalshi[1].ticker,
             "orientation": "inverse", "label": "An inverse pair"},
        ]}))  # fmt: skip
        config.write_text(yaml.safe_dump({
            "database": database, "venues": venues, "logging": {"format": "json"},
            "pairs": {"file": str(pairs)},
            "movers": {"filters": {v: {"min_volume_24h": 0, "max_spread": None}
                                   for v in ("polymarket", "kalshi")}},
        }))  # fmt: skip
        env = {**os.environ, "MOVERS_DATABASE_URL": db.url, "MOVERS_CONFIG": str(config)}
        for round_ in range(2):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "exporter", "run", "--once", env=env,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, err = await asyncio.wait_for(process.communicate(), 240)
            assert process.returncode == 0, err.decode()[-3000:]
            if round_ == 0:
                _seed_older_prices(db)
            sim.advance(60)
    await _store_alert(db)


def _seed_older_prices(db: Database) -> None:
    with db.connect(autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO snapshots (time, outcome_id, price, bid, ask, volume_24h, liquidity)
            SELECT now() - s.ago, o.outcome_id, greatest(0.01, least(0.99, l.price + s.shift)),
                   NULL, NULL, l.volume_24h / 2, l.liquidity / 2
            FROM outcomes o
            JOIN LATERAL (SELECT price, volume_24h, liquidity FROM snapshots x
                          WHERE x.outcome_id = o.outcome_id ORDER BY time DESC LIMIT 1) l ON true,
                 (VALUES (interval '25 hours', 0.2), (interval '70 minutes', -0.15),
                         (interval '20 minutes', 0.1), (interval '7 minutes', -0.08)) s (ago, shift)
            ON CONFLICT DO NOTHING
            """
        )


async def _store_alert(db: Database) -> None:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT market_id, venue, category FROM markets WHERE status = 'open'"
            " ORDER BY volume_24h DESC NULLS LAST LIMIT 1"
        ).fetchone()
    assert row is not None
    now = datetime.now(UTC) - timedelta(minutes=10)
    body = {
        "version": "4", "status": "firing", "receiver": "history",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "MarketMoveLarge", "severity": "info", "area": "markets",
                       "market_id": row[0], "venue": row[1], "category": row[2], "window": "1h"},
            "annotations": {"summary": "A test move +12.0 pp in 1h"},
            "startsAt": now.isoformat().replace("+00:00", "Z"),
            "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "feedbeef",
        }],
    }  # fmt: skip
    body["alerts"] += _signals(db, now)
    import orjson

    pool = create_pool(db.settings().database)
    await pool.open(wait=True)
    try:
        await store_alerts(Store(pool), parse_notification(orjson.dumps(body)), datetime.now(UTC))
    finally:
        await pool.close()


def _signals(db: Database, now: datetime) -> list[dict[str, Any]]:
    """One alert of each signal, as the exporter posts it (exporter.signals.alert_of) for a
    stored market, the way Alertmanager forwards it to the history."""
    from exporter.model import Side, Trade, Venue
    from exporter.signals import Pending, alert_of
    from exporter.storage.signals import MarketEvent, OutcomeInfo, VolumeSpike

    with db.connect() as conn:
        row = conn.execute(
            "SELECT o.outcome_id, m.market_id, m.venue, m.title, o.name, m.category, m.url"
            " FROM markets m JOIN outcomes o USING (market_id) WHERE m.venue = 'polymarket'"
            " ORDER BY m.volume_24h DESC NULLS LAST, o.position LIMIT 1"
        ).fetchone()
    assert row is not None
    outcome_id, market_id, venue, title, name, category, url = row
    info = OutcomeInfo(outcome_id, market_id, title, name, category, url)
    trade = Trade(now, outcome_id, Venue(venue), "0xtrade", 0.62, 40_000.0, Side.BUY,
                  "0x" + "ab" * 20)  # fmt: skip
    event = MarketEvent("status", "resolved", "open", now, market_id, venue, title, category,
                        url, now, 1e4, outcome_id, name, 0.97, now)  # fmt: skip
    pending = [
        Pending("whale", venue, now, trade=trade, info=info),
        Pending("wallet", venue, now, trade=trade, wallet_label="Fund", info=info),
        Pending(
            "listed",
            venue,
            now,
            event=dataclasses.replace(event, kind="listed", status="open", previous=None),
        ),
        Pending("resolved", venue, now, event=event),
        Pending(
            "liquidity",
            venue,
            now,
            outcome_id=outcome_id,
            info=info,
            figures={"bid": 0.4, "ask": None, "typical": 0.02, "held": 150.0},
        ),
        Pending(
            "volume",
            venue,
            now,
            figures={"window": 3600.0},
            spike=VolumeSpike(
                market_id, venue, title, category, url, outcome_id, name, 25_000.0, 40, 900.0
            ),
        ),
    ]
    alerts = []
    for i, p in enumerate(pending):
        alert = alert_of(p, timedelta(minutes=10), now)
        alerts.append(alert | {"status": "firing", "fingerprint": f"5167a1{i}",
                               "endsAt": "0001-01-01T00:00:00Z"})  # fmt: skip
    return alerts


def _expected_columns(panel: dict[str, Any]) -> set[str]:
    names = {o["matcher"]["options"] for o in panel["fieldConfig"]["overrides"]
             if o["matcher"]["id"] == "byName"}  # fmt: skip
    if panel["type"] == "candlestick":
        names |= {"open", "high", "low", "close"}
    return names


@pytest.fixture(scope="module", params=["postgres", "timescale"])
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One database per server kind, filled once for every query test of this module."""
    from tests.support.databases import fresh

    server = request.getfixturevalue(f"{request.param}_server")
    with fresh(server) as database:
        asyncio.run(_fill(database, tmp_path_factory.mktemp("fill")))
        yield database


@pytest.mark.db
@pytest.mark.parametrize("all_selected", [True, False], ids=["all", "each-option"])
@pytest.mark.parametrize("board_name", sorted(n for n, b in dashboards().items()
                                              if n != "ingest-health.json"))  # fmt: skip
def test_every_sql_query_runs_and_returns_rows_with_the_expected_columns(
    filled: Database, board_name: str, all_selected: bool
) -> None:
    board = dashboards()[board_name]
    now = datetime.now(UTC) + timedelta(minutes=1)
    timescale = filled.kind == "timescale"
    span = TimeRange(now - timedelta(hours=24), now)
    with filled.connect(autocommit=True) as conn:
        values = resolve_variables(board, conn, span, timescale, all_selected)
        queries = [(p["title"], p, t["rawSql"], t["format"]) for p in panels(board)
                   for t in p["targets"] if "rawSql" in t]  # fmt: skip
        queries += [(a["name"], None, a["target"]["rawSql"], "table")
                    for a in board["annotations"].get("list", []) if "target" in a]  # fmt: skip
        assert queries
        for title, panel, raw, fmt in queries:
            sql = expand_sql(raw, span, values, timescale)
            try:
                columns, rows = run_query(conn, sql)
            except psycopg.Error as exc:
                raise AssertionError(f"{board_name} / {title}: {exc}\n{sql}") from None
            assert rows, f"{board_name} / {title}: no rows\n{sql}"
            if fmt == "time_series":
                assert columns[0] == "time", (board_name, title, columns)
            if panel is not None:
                missing = _expected_columns(panel) - set(columns)
                assert not missing, (board_name, title, missing)


def test_dashboards_validate_against_grafanas_own_schema() -> None:
    """Grafana's dashboard JSON schema and each panel type's options schema (shared/
    grafana-schemas, from grafana-foundation-sdk), allowing only what Grafana fills in on load
    (tests/grafana.py says what)."""
    for name, board in dashboards().items():
        errors = schema_errors(board)
        assert not errors, (name, errors[:10])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda b: b["panels"][0]["options"].update(colourMode="value"), "colourMode"),
        (lambda b: b["panels"][4]["options"].update(cellHeight="huge"), "huge"),
        (lambda b: b.pop("schemaVersion"), "schemaVersion"),
        (lambda b: b["templating"]["list"][0].update(sort="alphabetical"), "alphabetical"),
        (lambda b: b["panels"][0]["fieldConfig"]["defaults"].update(colour="red"), "colour"),
    ],
)
def test_the_schema_check_refuses_what_grafana_would_not_load(change: Any, expected: str) -> None:
    board = copy.deepcopy(dashboards()["top-movers.json"])
    change(board)
    assert any(expected in error for error in schema_errors(board)), schema_errors(board)


def _variable(board: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in board["templating"].get("list", []) if v["name"] == name)


def test_every_market_detail_link_names_the_outcome() -> None:
    """A move of "Yes" must open the "Yes" chart, not the first outcome of its market."""
    found = 0
    for name, board in dashboards().items():
        for panel in panels(board):
            for item in panel.get("fieldConfig", {}).get("overrides", []):
                for prop in item["properties"]:
                    for target in prop["value"] if prop["id"] == "links" else []:
                        if "/d/movers-market" not in target["url"] or name == "alerts.json":
                            continue
                        found += 1
                        assert "var-outcome=${__data.fields.outcome_id}" in target["url"], (
                            name, panel["title"])  # fmt: skip
    assert found >= 4


@pytest.mark.db
def test_market_detail_opens_the_linked_outcome_and_its_picker_finds_any_market(
    filled: Database,
) -> None:
    board = dashboards()["market-detail.json"]
    market, outcome = _variable(board, "market"), _variable(board, "outcome")
    assert market["sort"] == outcome["sort"] == 0  # the queries' own order
    timescale = filled.kind == "timescale"
    now = datetime.now(UTC)
    span = TimeRange(now - timedelta(hours=1), now)
    with filled.connect(autocommit=True) as conn:
        row = conn.execute(
            "SELECT market_id, outcome_id FROM outcomes WHERE position = 1 ORDER BY 1 LIMIT 1"
        ).fetchone()
        assert row is not None
        _, options = run_query(conn, expand_sql(outcome["query"], span, {"market": row[0]},
                                                timescale))  # fmt: skip
        values = [o[1] for o in options]
        assert row[1] in values
        assert values.index(row[1]) == 1  # by position: "Yes", then "No"
        # Before anything is typed: open markets first, busiest first.
        _, listed = run_query(conn, expand_sql(market["query"], span, {}, timescale))
        ids = [r[1] for r in listed]
        stored = conn.execute(
            "SELECT market_id FROM markets"
            " ORDER BY status = 'open' DESC, volume_24h DESC NULLS LAST, market_id LIMIT 1000"
        ).fetchall()
        assert ids == [r[0] for r in stored]
        # Typing finds a market that is not open, and one by its id.
        conn.execute(
            "INSERT INTO markets (market_id, venue, native_id, title, category, status,"
            " first_seen, last_seen) VALUES ('kalshi:ZZ-RESOLVED', 'kalshi', 'ZZ-RESOLVED',"
            " 'Zebra crossing vote', 'Other', 'resolved', now(), now()) ON CONFLICT DO NOTHING"
        )
        try:
            for typed in ("zebra cross", "kalshi:ZZ-RES"):
                sql = expand_sql(market["query"], span, {}, timescale, search=typed)
                found = run_query(conn, sql)[1]
                assert [r[1] for r in found] == ["kalshi:ZZ-RESOLVED"], typed
                assert found[0][0].endswith(" · resolved")
        finally:
            conn.execute("DELETE FROM markets WHERE market_id = 'kalshi:ZZ-RESOLVED'")


@pytest.mark.db
def test_the_window_picker_offers_the_configured_windows_in_order_of_width(pg: Database) -> None:
    """The windows come from what the refresh stored (movers.windows, whatever it holds), so a
    configuration with other windows needs no new dashboards."""
    prepare_schema(pg.settings())
    labels = ["24h", "5m", "7d", "90s", "15m", "1h", "2h"]
    with pg.connect() as conn:
        conn.execute(
            """
            INSERT INTO category_moves (window_label, category, markets, moved, moved_up,
                                        moved_down, mean_abs_move_pp, computed_at)
            SELECT label, category, 1, 0, 0, 0, 0, now()
            FROM unnest(%s::text[]) label, unnest(ARRAY['Politics', 'Crypto']) category
            """,
            (labels,),
        )
        conn.commit()
        variables = dashboards()["top-movers.json"]["templating"]["list"]
        (variable,) = [v for v in variables if v["name"] == "window"]
        _, rows = run_query(conn, variable["query"])
    assert [r[0] for r in rows] == ["90s", "5m", "15m", "1h", "2h", "24h", "7d"]
    assert variable["current"]["value"] == "1h"
