"""`movers tune`'s model: the shipped alerting files read as Prometheus and Alertmanager read
them, the exporter's move at each instant, the rule's firing and Alertmanager's grouping."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from exporter.errors import ConfigError
from exporter.tuning import (
    Alerting,
    Firing,
    MarketMoves,
    Replay,
    above,
    cap_bars,
    episodes,
    exported,
    move_segments,
    notifications,
    read_alerting,
    sampled,
    what_if,
    without,
)

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alertmanager" / "rules"
ALERTMANAGER = ROOT / "alertmanager" / "alertmanager.yml"
MOVE = {
    "alertname": "MarketMoveLarge", "area": "markets", "severity": "info", "venue": "kalshi",
    "market_id": "kalshi:X", "window": "5m", "category": "Sports",
}  # fmt: skip


def test_the_shipped_files_give_the_thresholds_timers_and_route() -> None:
    alerting = read_alerting(RULES, ALERTMANAGER)
    assert alerting.thresholds == {"5m": 5.0, "15m": 8.0, "1h": 10.0, "24h": 15.0}
    assert (alerting.for_seconds, alerting.keep_firing_seconds) == (0.0, 300.0)
    assert alerting.rule_labels == {"severity": "info", "area": "markets"}
    (route,) = alerting.routes(MOVE)  # the history webhook is no chat
    assert route.receiver == "markets"
    assert route.group_by == ("alertname", "venue", "market_id")
    assert (route.group_wait, route.group_interval, route.repeat_interval) == (5, 10, 6 * 3600)
    # The signals' own route, by its labels: inherited timers where it sets none.
    listed = {"alertname": "MarketListed", "area": "signals", "venue": "kalshi"}
    (signal,) = alerting.routes(listed)
    assert (signal.group_by, signal.group_wait) == (("alertname", "venue", "category"), 30)
    assert signal.repeat_interval == 24 * 3600


def test_what_the_files_say_is_what_is_replayed(tmp_path: Path) -> None:
    """One definition: a user's edit of thresholds.yml, the rule or a route is what tune uses."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    thresholds = yaml.safe_load((rules / "thresholds.yml").read_text())
    for rule in thresholds["groups"][0]["rules"]:
        if rule.get("record") == "movers:alert_threshold_move_pp" and rule["labels"] == {
            "window": "5m"
        }:
            rule["expr"] = "vector(3.5)"
    (rules / "thresholds.yml").write_text(yaml.safe_dump(thresholds))
    markets = yaml.safe_load((rules / "markets.yml").read_text())
    markets["groups"][0]["rules"][0] |= {"for": "1m", "keep_firing_for": "2m"}
    (rules / "markets.yml").write_text(yaml.safe_dump(markets))
    config = yaml.safe_load(ALERTMANAGER.read_text())
    config["route"]["routes"].insert(0, {
        "receiver": "ops", "matchers": ['category = "Sports"'],
        "group_by": ["alertname"], "group_interval": "1h",
    })  # fmt: skip
    manager = tmp_path / "alertmanager.yml"
    manager.write_text(yaml.safe_dump(config))
    alerting = read_alerting(rules, manager)
    assert alerting.thresholds["5m"] == 3.5
    assert (alerting.for_seconds, alerting.keep_firing_seconds) == (60, 120)
    (route,) = alerting.routes(MOVE)
    assert (route.receiver, route.group_by, route.group_interval) == ("ops", ("alertname",), 3600)
    assert alerting.routes(MOVE | {"category": "Politics"})[0].receiver == "markets"


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda r: (r / "thresholds.yml").write_text("groups: [\n"), "thresholds.yml"),
        (lambda r: (r / "markets.yml").unlink(), "no rule alerts MarketMoveLarge"),
        (
            lambda r: (r / "thresholds.yml").write_text(
                (r / "thresholds.yml").read_text().replace("vector(5)", "vector(5) * 2", 1)
            ),
            "must be `vector(<pp>)`",
        ),
        (
            lambda r: (r / "markets.yml").write_text(
                (r / "markets.yml")
                .read_text()
                .replace("keep_firing_for: 5m", "keep_firing_for: x", 1)
            ),
            "keep_firing_for",
        ),
    ],
)
def test_a_broken_file_fails_naming_it(tmp_path: Path, edit: object, named: str) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    edit(rules)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=re.escape(named)):
        read_alerting(rules, ALERTMANAGER)
    with pytest.raises(ConfigError, match="no such file"):
        read_alerting(RULES, tmp_path / "missing.yml")


def test_the_move_at_each_instant_is_the_refresh_s() -> None:
    # A price every 60 s at 0.50, a jump to 0.60 at 600 s, back to 0.50 at 1200 s.
    rows = [(float(t), 0.60 if 600 <= t < 1200 else 0.50, 0.02) for t in range(0, 1800, 60)]
    found = move_segments(rows, width=300, lo=0, hi=1800, staleness=3600, floor=5,
                          max_spread=0.10)  # fmt: skip
    # +10 pp from the jump until the price 5 minutes back is the new one; -10 pp after the fall.
    assert found == [(600, 900, 10.0), (1200, 1500, -10.0)]
    # A spread too wide at the time leaves the outcome out, as the filter does.
    wide = [(t, p, 0.2 if 700 <= t < 800 else s) for t, p, s in rows]
    assert move_segments(wide, width=300, lo=0, hi=1800, staleness=3600, floor=5,
                         max_spread=0.10) == [(600, 720, 10.0), (840, 900, 10.0),
                                              (1200, 1500, -10.0)]  # fmt: skip
    # Rows older than the staleness are no price: a quiet hour has no move.
    sparse = [(0.0, 0.5, 0.0), (4000.0, 0.7, 0.0)]
    assert move_segments(sparse, width=300, lo=0, hi=8000, staleness=600, floor=5,
                         max_spread=None) == []  # fmt: skip
    assert without([(0, 100, 6.0)], 40, 60) == [(0, 40, 6.0), (60, 100, 6.0)]


def test_the_rule_fires_held_for_and_keeps_firing() -> None:
    conditions = above([(0, 60, 6.0), (60, 90, 4.0), (200, 260, -7.0), (1000, 1010, 9.0)], 5)
    assert conditions == [(0, 60), (200, 260), (1000, 1010)]
    # keep_firing_for 300 s: the second stretch continues the first alert.
    assert episodes(conditions, 0, 300) == [(0, 560), (1000, 1310)]
    # for 30 s: a 10 s stretch never fires.
    assert episodes(conditions, 30, 0) == [(30, 60), (230, 260)]


def _alerts(*firing: tuple[str, str, float, float]) -> list[Firing]:
    return [Firing(f"{m}|{w}", ("r", (m,)), s, e) for m, w, s, e in firing]


def test_alertmanager_sends_a_group_when_an_alert_joins_it_not_again() -> None:
    alerting = read_alerting(RULES, ALERTMANAGER)
    (route,) = alerting.routes(MOVE)
    routes = {"r": route}
    # Two windows in one evaluation: one message after group_wait.
    sent = notifications(_alerts(("A", "5m", 100, 500), ("A", "15m", 100, 500)), routes)
    assert [(s.at, s.new) for s in sent] == [(105, ("A|15m", "A|5m"))]
    # A window joining later: the next group_interval tick sends it; the first one firing
    # again while the group lives is no news.
    sent = notifications(
        _alerts(("A", "5m", 100, 400), ("A", "1h", 133, 900), ("A", "5m", 450, 800)), routes
    )
    assert [(s.at, s.new) for s in sent] == [(105, ("A|5m",)), (135, ("A|1h",))]
    # After every alert resolved the group is gone: the next one forms a new group.
    sent = notifications(_alerts(("A", "5m", 100, 400), ("A", "5m", 1000, 1400)), routes)
    assert [s.at for s in sent] == [105, 1005]
    # Still firing after repeat_interval: sent again.
    sent = notifications(_alerts(("A", "5m", 0, 6 * 3600 + 100)), routes)
    assert [s.at for s in sent] == [5, 5 + 6 * 3600]
    # Each market its own group.
    assert len(notifications(_alerts(("A", "5m", 0, 100), ("B", "5m", 0, 100)), routes)) == 2


def test_a_replay_counts_per_window_and_answers_what_if() -> None:
    alerting: Alerting = read_alerting(RULES, ALERTMANAGER)
    from datetime import UTC, datetime

    since = datetime(2026, 11, 1, tzinfo=UTC)
    t0 = since.timestamp()
    market = MarketMoves(
        "kalshi:X", "kalshi", "Sports", "Will X?",
        {"5m": [(t0 + 100, t0 + 400, 6.0), (t0 + 90_000, t0 + 90_100, -9.0)],
         "15m": [(t0 + 100, t0 + 900, 8.5)], "1h": [], "24h": []},
    )  # fmt: skip
    watched = MarketMoves(
        "kalshi:W", "kalshi", "Sports", "Watched", {"5m": [(t0 + 50, t0 + 60, 2.5)],
        "15m": [], "1h": [], "24h": []}, {"5m": 2.0}, watched=True,
    )  # fmt: skip
    quiet = MarketMoves("kalshi:Q", "kalshi", "Sports", "Below the export floor",
                        {"5m": [(t0, t0 + 500, 3.0)], "15m": [], "1h": [], "24h": []})  # fmt: skip
    replay = Replay([market, watched, quiet], alerting, 3.0, since,
                    datetime(2026, 11, 3, tzinfo=UTC))  # fmt: skip
    outcome = replay.run()
    summary = outcome.summary()
    # X: its 5m and 15m together, then 5m a day later; W: its own 2 pp threshold.
    assert summary["notifications"] == 3
    assert summary["per_day_mean"] == 1.5
    assert summary["busiest_day"] == {"date": "2026-11-01", "notifications": 2}
    windows = outcome.windows()
    assert (windows["5m"]["notifications"], windows["15m"]["notifications"]) == (3, 1)
    assert outcome.top_markets(1)[0]["market_id"] == "kalshi:X"
    rows = what_if(replay, "5m", [3, 7, 10])
    # 3 pp: the quiet market too (the export floor is 3); 7 pp: X's 6 pp is out, its 15m
    # still sends; 10 pp: X's -9 pp a day later is out as well.
    assert [r["notifications"] for r in rows] == [4, 3, 2]
    assert [r["window_notifications"] for r in rows] == [4, 2, 1]


def test_only_what_the_export_keeps_can_alert() -> None:
    """At most `limit` outcomes a window are exported, the best by |move| x weight at each
    instant (watched ones always), and only moves of at least the export's floor."""
    pieces = [
        (0.0, 100.0, "big", 9.0),  # score 9
        (0.0, 100.0, "heavy", 4.0),  # score 4 x 3 = 12
        (50.0, 150.0, "mid", 6.0),  # score 6: out while both others are in
        (0.0, 100.0, "small", 2.0),  # under the floor of 3 pp
        (0.0, 100.0, "watched", 1.0),
    ]
    kept = exported(pieces, weights={"heavy": 3.0}, watched=frozenset({"watched"}), limit=2,
                    min_abs=3.0)  # fmt: skip
    assert sorted(kept) == [
        (0.0, 100.0, "big", 9.0), (0.0, 100.0, "heavy", 4.0), (0.0, 100.0, "watched", 1.0),
        (100.0, 150.0, "mid", 6.0),
    ]  # fmt: skip
    # With room for three, "mid" is exported from its start.
    kept = exported(pieces, weights={"heavy": 3.0}, watched=frozenset(), limit=3, min_abs=3.0)
    assert (50.0, 150.0, "mid", 6.0) in kept


@pytest.mark.parametrize("seed", range(4))
def test_the_export_at_each_instant_is_the_refresh_s_ranking(seed: int) -> None:
    """At every instant, what ``exported`` keeps is the ``limit`` best of the moves present in
    the refresh's order (movers_ranked.sql): score, then |move|, then the outcome's id, so equal
    scores are settled as the exporter settles them."""
    import random

    rng = random.Random(seed)
    limit, pieces = 3, []
    weights = {f"o{i}": rng.choice([1.0, 2.0]) for i in range(12)}
    for outcome in weights:
        at = float(rng.randrange(0, 600, 60))
        while at < 3600:
            length = float(rng.choice([60, 120, 300, 900]))
            pieces.append(
                (at, min(at + length, 3600.0), outcome, rng.choice([-8.0, 4.0, 6.0, 8.0]))
            )
            at += length + rng.choice([0.0, 0.0, 120.0])
    kept = exported(pieces, weights=weights, watched=frozenset(), limit=limit, min_abs=3.0)
    for k in range(120):
        moment = 15.0 + 30 * k
        present = [p for p in pieces if p[0] <= moment < p[1]]
        present.sort(key=lambda p: (-abs(p[3]) * weights[p[2]], -abs(p[3]), p[2]))
        expected = sorted((p[2], p[3]) for p in present[:limit])
        assert sorted((p[2], p[3]) for p in kept if p[0] <= moment < p[1]) == expected, moment


def test_the_cap_bar_is_the_limit_th_best_present_all_hour_else_the_lowest() -> None:
    pieces = [
        (0.0, 3600.0, "a", 10.0),  # score 10, all hour
        (0.0, 1800.0, "b", 8.0),  # b: 8 then 6, all hour: its lowest, 6
        (1800.0, 3600.0, "b", -6.0),
        (0.0, 3600.0, "c", 3.5),  # 3.5 x 2 = 7
        (600.0, 900.0, "d", 20.0),  # part of the hour only
        (0.0, 3600.0, "w", 50.0),  # watched: exported anyway, takes no ranked place
        (0.0, 3600.0, "tiny", 2.0),  # under the export's floor: never exported
        (3600.0, 4000.0, "a", 10.0),  # the next hour: one piece, part of it
    ]
    common = {"weights": {"c": 2.0}, "watched": frozenset({"w"}), "min_abs": 3.0,
              "since": 0.0, "until": 7200.0}  # fmt: skip
    assert cap_bars(pieces, limit=2, **common) == {0.0: 7.0, 3600.0: 10.0}
    # Fewer present all hour than places: a rival must beat the lowest piece at some instant.
    assert cap_bars(pieces, limit=4, **common) == {0.0: 6.0, 3600.0: 10.0}
    # An hour cut by the replay's end counts as whole when a piece covers what is left of it.
    assert cap_bars(pieces, limit=1, **(common | {"until": 4000.0}))[3600.0] == 10.0
    assert cap_bars(pieces, limit=0, **common) == {}


@pytest.mark.parametrize("seed", range(6))
def test_leaving_out_the_moves_under_the_bar_changes_no_alerting_move(seed: int) -> None:
    """What the export keeps of the moves that could alert is the same whether every smaller
    move ranks beside them or only those whose score reaches the hour's bar (the replay's
    second read)."""
    import random

    rng = random.Random(seed)
    threshold, limit, pieces = 10.0, 4, []
    weights = {f"o{i}": rng.uniform(0.5, 3.0) for i in range(30)}
    for outcome in weights:
        at = 0.0
        while at < 4 * 3600:
            length = rng.choice([300.0, 900.0, 2400.0, 5000.0])
            move = rng.choice([-1, 1]) * rng.uniform(3.0, 14.0)
            pieces.append((at, min(at + length, 4 * 3600.0), outcome, round(move, 2)))
            at += length + rng.choice([0.0, 0.0, 600.0])
    alerting = [p for p in pieces if abs(p[3]) >= threshold]
    bars = cap_bars(alerting, weights=weights, watched=frozenset(), limit=limit, min_abs=3.0,
                    since=0.0, until=4 * 3600.0)  # fmt: skip
    rivals = []
    for start, end, outcome, move in pieces:
        if abs(move) >= threshold:
            continue
        hour = start // 3600 * 3600
        while hour < end:  # the second read works hour by hour
            if abs(move) * weights[outcome] >= bars.get(hour, float("inf")) - 1e-9:
                rivals.append((max(start, hour), min(end, hour + 3600), outcome, move))
            hour += 3600
    assert len(rivals) < len(pieces) - len(alerting)  # something was left out

    def alerts(kept: list[tuple[float, float, str, float]]) -> dict[str, list[tuple[float, float]]]:
        return {o: above([(a, b, m) for a, b, x, m in kept if x == o], threshold)
                for o in weights}  # fmt: skip

    full = exported(pieces, weights=weights, watched=frozenset(), limit=limit, min_abs=3.0)
    reduced = exported(alerting + rivals, weights=weights, watched=frozenset(), limit=limit,
                       min_abs=3.0)  # fmt: skip
    assert alerts(reduced) == alerts(full)


def test_the_rule_sees_a_move_only_at_a_refresh() -> None:
    """Refreshes every 15 s at 5, 20, 35, …: a stretch holding none is never seen; one that
    does counts from its first refresh until the refresh after its last."""
    assert sampled([(0, 4), (6, 21), (41, 49), (51, 66)], 15, 5) == [(20, 35), (65, 80)]
    # Seen at consecutive refreshes: one stretch.
    assert sampled([(6, 21), (30, 40)], 15, 5) == [(20, 50)]
    assert sampled([(0, 4)], 0, 0) == [(0, 4)]  # every instant
