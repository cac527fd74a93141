"""Signals without a database: the settings, which market events are news, the alerts' shape
and bounds, the cooldown and the minute's budget."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import Settings, SignalsConfig, load_settings
from exporter.errors import ConfigError
from exporter.model import Side, Trade, Venue
from exporter.signals import Pending, Signals, alert_of, classify, detect_trades
from exporter.storage.signals import MarketEvent, OutcomeInfo

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WALLET = "0x" + "ab" * 20


def _trade(price: float, size: float, *, venue: Venue = Venue.POLYMARKET, trader: str | None = None,
           trade_id: str = "t1", at: datetime = NOW) -> Trade:  # fmt: skip
    return Trade(at, f"{venue.value}:tok", venue, trade_id, price, size, Side.BUY, trader)


def _event(kind: str, status: str, previous: str | None = None, **over: object) -> MarketEvent:
    fields: dict[str, object] = {
        "kind": kind, "status": status, "previous": previous, "at": NOW,
        "market_id": "kalshi:KX-1", "venue": "kalshi", "title": "Will it rain?",
        "category": "Weather & Climate", "url": "https://kalshi.com/markets/kx",
        "listed_at": NOW - timedelta(minutes=5), "volume_24h": 10.0,
        "outcome_id": "kalshi:KX-1", "outcome": "Yes", "price": 0.97, "price_time": NOW,
    }  # fmt: skip
    return MarketEvent(**(fields | over))  # type: ignore[arg-type]


def test_signals_settings_fail_at_start_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "movers.yaml"
    path.write_text(yaml.safe_dump({"signals": {
        "wallets": {"0xnot-a-wallet": "x"}, "whale": {"polymarkt": 5},
        "alertmanager_url": "alertmanager:9093",
    }}))  # fmt: skip
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    problems = dict(info.value.problems)
    assert "signals.whale.polymarkt" in problems
    assert "signals.alertmanager_url" in problems
    assert any(p.startswith("signals.wallets") for p in problems), problems


def test_environment_points_signals_at_alertmanager() -> None:
    settings = load_settings(
        None, environ={"MOVERS__SIGNALS__ALERTMANAGER_URL": "http://alertmanager:9093/"}
    )
    assert settings.signals.alertmanager_url == "http://alertmanager:9093"
    assert Settings().signals.alertmanager_url is None


def test_whales_by_venue_wallets_whatever_the_size_each_trade_once() -> None:
    config = SignalsConfig.model_validate({
        "whale": {"polymarket": 1000, "kalshi": None},
        "wallets": {"0x" + WALLET[2:].upper(): "Fund"},
    })  # fmt: skip
    seen: OrderedDict[str, None] = OrderedDict()
    trades = [
        _trade(0.5, 1999, trade_id="small"),  # $999.50
        _trade(0.5, 2000, trade_id="whale", at=NOW + timedelta(seconds=2)),
        _trade(0.9, 1e6, venue=Venue.KALSHI, trade_id="kalshi-off"),
        _trade(0.1, 1, trader=WALLET, trade_id="watched", at=NOW + timedelta(seconds=1)),
    ]
    found = detect_trades(trades, config, seen)
    assert [(p.signal, p.trade.trade_id) for p in found if p.trade] == [
        ("wallet", "watched"), ("whale", "whale"),
    ]  # fmt: skip
    assert found[0].wallet_label == "Fund"
    assert detect_trades(trades, config, seen) == []


@pytest.mark.parametrize(
    ("event", "signal"),
    [
        (_event("listed", "open"), "listed"),
        (_event("listed", "upcoming"), "listed"),
        (_event("listed", "open", listed_at=NOW - timedelta(days=2)), None),  # a first start
        (_event("listed", "open", listed_at=None), None),
        (_event("listed", "closed"), None),
        (_event("status", "closed", "open"), "closed"),
        (_event("status", "resolved", "closed"), "resolved"),
        (_event("status", "resolved", "open"), "resolved"),
        (_event("status", "delisted", "open"), None),
        (_event("status", "open", "paused"), None),
        (_event("status", "resolved", "delisted"), None),
    ],
)
def test_which_market_events_are_news(event: MarketEvent, signal: str | None) -> None:
    assert classify(event, SignalsConfig(), NOW) == signal


def test_listings_follow_the_chosen_categories_and_switches() -> None:
    politics = SignalsConfig.model_validate({"listings": {"categories": ["Politics"]}})
    assert classify(_event("listed", "open"), politics, NOW) is None
    assert classify(_event("listed", "open", category="Politics"), politics, NOW) == "listed"
    off = SignalsConfig.model_validate({"resolutions": {"enabled": False}})
    assert classify(_event("status", "resolved", "open"), off, NOW) is None


def test_alerts_stay_within_the_templates_bounds_with_the_link_last() -> None:
    long = "A question " * 40
    info = OutcomeInfo("polymarket:tok", "polymarket:0xc", long, "Yes", "Politics",
                       "https://polymarket.com/event/" + "s" * 120)  # fmt: skip
    trade = _trade(0.62, 123_456.7, trader=WALLET)
    for pending in (
        Pending("whale", "polymarket", NOW, trade=trade, info=info),
        Pending("wallet", "polymarket", NOW, trade=trade, wallet_label="W" * 300, info=info),
        Pending("listed", "kalshi", NOW, event=_event("listed", "open", title=long)),
        Pending("resolved", "kalshi", NOW, event=_event("status", "resolved", "open", title=long)),
    ):
        alert = alert_of(pending, timedelta(minutes=10), NOW)
        notes, labels = alert["annotations"], alert["labels"]
        assert len(notes["summary"]) <= 200
        assert len(notes["description"]) <= 300
        assert notes["description"].endswith(labels["url"])
        assert all(len(v) <= 300 for v in labels.values())
        assert alert["endsAt"] == "2026-12-01T12:10:00Z"
    whale = alert_of(Pending("whale", "polymarket", NOW, trade=trade, info=info),
                     timedelta(minutes=10), NOW)  # fmt: skip
    assert "$76,543" in whale["annotations"]["summary"]
    assert "62.0¢" in whale["annotations"]["summary"]
    resolved = alert_of(
        Pending("resolved", "kalshi", NOW, event=_event("status", "resolved", "open")),
        timedelta(minutes=10), NOW,
    )  # fmt: skip
    assert resolved["annotations"]["summary"] == "Resolved: Yes at 97.0¢ · Will it rain?"


def test_a_markets_cooldown_and_the_minutes_budget() -> None:
    config = SignalsConfig.model_validate({"cooldown": "10m", "max_per_minute": 3})
    signals = Signals(config, store=None)  # type: ignore[arg-type]

    def whale(market: str) -> Pending:
        info = OutcomeInfo("polymarket:tok", market, "T", "Yes", "Politics", None)
        return Pending("whale", "polymarket", NOW, trade=_trade(0.5, 1e5), info=info)

    assert signals.admit(whale("a"), 0.0)
    assert not signals.admit(whale("a"), 599.0)  # cooling down
    assert signals.admit(whale("b"), 1.0)
    assert signals.admit(whale("a"), 600.5)  # cooled down
    listing = Pending("listed", "kalshi", NOW, event=_event("listed", "open"))
    budget = Signals(config, store=None)  # type: ignore[arg-type]
    assert [budget.admit(listing, t) for t in (0, 1, 2, 3, 61)] == [True, True, True, False, True]
    assert budget.results[("listed", "kalshi", "over_budget")] == 1
    assert signals.results[("whale", "polymarket", "cooldown")] == 1


def _book(at: int, bid: float | None, ask: float | None, outcome: str = "polymarket:a") -> Any:
    from exporter.model import Snapshot

    return Snapshot(NOW + timedelta(seconds=at), outcome, 0.5, bid, ask)


def test_a_tight_book_that_gaps_notifies_once_after_the_hold_and_learns_nothing_meanwhile() -> None:
    from exporter.signals import LiquidityWatch

    watch = LiquidityWatch(SignalsConfig().liquidity)  # 3¢ tight for 10m, 10¢ gap, x4, held 2m
    everyone = lambda _: True  # noqa: E731
    # Tight from 0 s; a quote stands until the next, so two quotes 10 minutes apart suffice.
    assert watch.observe([_book(0, 0.49, 0.51), _book(540, 0.49, 0.51)], everyone) == []
    # Too soon to know it is normally tight: a wide quote at 590 s is learnt, not a gap.
    assert watch.observe([_book(590, 0.40, 0.60)], everyone) == []
    assert watch.books["polymarket:a"].gap_since is None
    assert watch.books["polymarket:a"].tight_since is None  # typical past 3¢ now
    for i in range(30):
        watch.observe([_book(600 + 15 * i, 0.49, 0.51)], everyone)
    assert watch.books["polymarket:a"].typical == pytest.approx(0.02, abs=0.002)
    # Wide for a minute, then tight again: no signal, and the gap forgotten.
    assert watch.observe([_book(1800, 0.40, 0.60), _book(1860, 0.45, 0.58)], everyone) == []
    assert watch.observe([_book(1870, 0.49, 0.51)], everyone) == []
    assert watch.books["polymarket:a"].gap_since is None
    # A side empties at 1900 s and stays so: the signal at 2020 s, once.
    assert watch.observe([_book(1900, 0.49, None), _book(2000, 0.49, None)], everyone) == []
    (gap,) = watch.observe([_book(2020, 0.49, None)], everyone)
    assert (gap.signal, gap.outcome_id, gap.figures["ask"]) == ("liquidity", "polymarket:a", None)
    assert gap.figures["held"] == 120
    typical = watch.books["polymarket:a"].typical
    assert watch.observe([_book(2100, 0.30, None)], everyone) == []
    assert watch.sweep(NOW + timedelta(hours=1)) == []
    assert watch.books["polymarket:a"].typical == typical  # unchanged by the gap


def test_a_quiet_gap_is_found_by_the_sweep_and_only_watched_books_count() -> None:
    from exporter.signals import LiquidityWatch

    watch = LiquidityWatch(SignalsConfig().liquidity)
    rows = [_book(0, 0.49, 0.51), _book(700, 0.30, 0.70)]
    assert watch.observe(rows, lambda o: o == "polymarket:a") == []
    assert watch.sweep(NOW + timedelta(seconds=819)) == []
    (gap,) = watch.sweep(NOW + timedelta(seconds=820))
    assert gap.figures["bid"] == 0.30
    # A wide book that never traded tight is not a gap: it learns its own spread.
    wide = [_book(60 * i, 0.30, 0.70, "polymarket:b") for i in range(20)]
    assert watch.observe(wide, lambda o: True) == []
    assert watch.sweep(NOW + timedelta(hours=1)) == []
    assert watch.observe([_book(0, 0.4, 0.5, "polymarket:c")], lambda o: False) == []
    assert "polymarket:c" not in watch.books
