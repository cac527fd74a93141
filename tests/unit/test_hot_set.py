"""The hot set: one object REST jobs and streams share, every hot asset under one source."""

from __future__ import annotations

from exporter.ingest.hot import HotSet, Known
from exporter.model import Venue


def _hot() -> HotSet:
    hot = HotSet(Venue.POLYMARKET)
    known = {
        "a": Known(("a1", "a2"), 100.0, 5.0),
        "b": Known(("b1", "b2"), 50.0, None),
        "c": Known(("c1", "c2"), 10.0, 1.0),
    }
    hot.choose(known, ["b", "a", "gone"])  # a market no longer known is not hot
    return hot


def test_assets_follow_the_hot_order_and_the_limit() -> None:
    hot = _hot()
    assert hot.markets == ["b", "a"]
    assert len(hot) == 2
    assert "a" in hot
    assert "c" not in hot
    assert "gone" not in hot
    assert hot.assets() == ["b1", "b2", "a1", "a2"]
    assert hot.assets(3) == ["b1", "b2", "a1"]


def test_what_a_stream_carries_is_not_polled() -> None:
    hot = _hot()
    assert hot.polled() == ["b1", "b2", "a1", "a2"]  # no stream yet
    hot.live = lambda: {"a1", "b2", "c1"}
    assert hot.polled() == ["b1", "a2"]


def test_rows_get_their_markets_figures_hot_or_not() -> None:
    hot = _hot()
    assert hot.figures("a2") == (100.0, 5.0)
    assert hot.figures("c1") == (10.0, 1.0)  # a streamed row of a known, non-hot market
    assert hot.figures("zz") == (None, None)
    assert hot.market_of("b1") == "b"
    assert hot.market_of("zz") is None
