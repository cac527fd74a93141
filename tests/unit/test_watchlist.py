"""Watchlist entries: their settings, the thresholds exported for the alert rule, and a watched
market's own whale size."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from exporter.config import Settings, SignalsConfig, load_settings
from exporter.errors import ConfigError
from exporter.ingest.hot import HotSet, Known, WatchCollector, whale_limits
from exporter.model import Side, Trade, Venue
from exporter.signals import detect_trades

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _settings(tmp_path: Path, venues: dict[str, object]) -> Settings:
    path = tmp_path / "movers.yaml"
    path.write_text(yaml.safe_dump({"venues": venues}))
    return load_settings(path, environ={})


def test_entries_are_strings_or_markets_with_thresholds_of_their_own(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"polymarket": {"watchlist": [
        "plain-slug", {"market": "will-x-win", "move_pp": {"5m": 2, "1h": 4}, "whale": 2500},
    ]}})  # fmt: skip
    plain, entry = settings.venues.polymarket.watchlist
    assert (plain.market, plain.move_pp, plain.whale) == ("plain-slug", {}, None)
    assert {k.total_seconds(): v for k, v in entry.move_pp.items()} == {300: 2, 3600: 4}
    assert set(settings.venues.polymarket.watched) == {"plain-slug", "will-x-win"}


def test_a_threshold_for_a_window_the_exporter_does_not_compute_fails_naming_the_key(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as info:
        _settings(tmp_path, {"kalshi": {"watchlist": [{"market": "KX", "move_pp": {"30m": 3}}]}})
    (key, why), *_ = info.value.problems
    assert key == "venues.kalshi.watchlist.0.move_pp"
    assert "30m is not one of movers.windows (5m, 15m, 1h, 24h)" in why
    with pytest.raises(ConfigError) as info:
        _settings(tmp_path, {"kalshi": {"watchlist": [{"market": "KX", "whale": -1}]}})
    assert [k for k, _ in info.value.problems] == ["venues.kalshi.watchlist.0.whale"]


def _hot(tmp_path: Path) -> dict[str, HotSet]:
    settings = _settings(tmp_path, {
        "polymarket": {"watchlist": [{"market": "slug-a", "move_pp": {"5m": 2}, "whale": 500}]},
        "kalshi": {"watchlist": [{"market": "KXEVENT", "move_pp": {"15m": 3, "1h": 6}}]},
    })  # fmt: skip
    poly, kalshi = HotSet(Venue.POLYMARKET), HotSet(Venue.KALSHI)
    (watch,) = settings.venues.polymarket.watchlist
    poly.choose({"0xa": Known(("tok-yes", "tok-no"), 1.0, None, "slug-a")}, ["0xa"], {"0xa": watch})
    (kwatch,) = settings.venues.kalshi.watchlist
    kalshi.choose(
        {"KXEVENT-A": Known(("KXEVENT-A",), 1.0), "KXEVENT-B": Known(("KXEVENT-B",), 1.0)},
        ["KXEVENT-A", "KXEVENT-B"], {"KXEVENT-A": kwatch, "KXEVENT-B": kwatch},
    )  # fmt: skip
    return {"polymarket": poly, "kalshi": kalshi}


def test_watched_markets_thresholds_are_exported_for_the_rule(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    registry.register(WatchCollector(list(_hot(tmp_path).values())))
    value = registry.get_sample_value
    name = "movers_watch_threshold_move_pp"
    assert value(name, {"venue": "polymarket", "market_id": "polymarket:0xa", "window": "5m"}) == 2
    for market in ("kalshi:KXEVENT-A", "kalshi:KXEVENT-B"):
        assert value(name, {"venue": "kalshi", "market_id": market, "window": "1h"}) == 6
    samples = [s for f in registry.collect() for s in f.samples]
    assert len(samples) == 5


def test_a_watched_markets_own_whale_size_applies_to_its_trades_only(tmp_path: Path) -> None:
    whale_for = whale_limits(_hot(tmp_path))
    assert whale_for("polymarket:tok-no") == 500
    assert whale_for("polymarket:other") is None
    assert whale_for("kalshi:KXEVENT-A") is None  # watched, without a whale size of its own
    config = SignalsConfig()  # 10,000 by default

    def trade(outcome: str, trade_id: str) -> Trade:
        return Trade(NOW, outcome, Venue.POLYMARKET, trade_id, 0.5, 1_200, Side.BUY)  # $600

    found = detect_trades(
        [trade("polymarket:tok-no", "a"), trade("polymarket:other", "b")],
        config, OrderedDict(), whale_for,
    )  # fmt: skip
    assert [(p.signal, p.trade.trade_id) for p in found if p.trade] == [("whale", "a")]
