"""The cross-venue matcher (``movers pairs suggest``) on titles as the venues word them: dates,
filler and opposite questions, and what similar wording cannot tell apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from exporter.config.pairs import PairsFile
from exporter.pairing import precision_recall, question, suggest
from exporter.storage.pairs import OpenMarket

END = datetime(2027, 3, 3, tzinfo=UTC)


def _market(
    venue: str, ref: str, title: str, *, end: datetime | None = END, category: str = "Elections"
) -> OpenMarket:
    slug = f"{ref}-slug" if venue == "polymarket" else None
    return OpenMarket(venue, ref, slug, title, category, end, None, "Yes")


def test_a_title_is_reduced_to_its_question() -> None:
    poly = question("Elections: win the 42 primary by March 3?")
    kalshi = question("Elections: will it win the 42 primary? — Before Mar 4, 2027")
    assert poly.text == kalshi.text == "elections win 42 primary"
    assert poly.numbers == kalshi.numbers == {"42"}
    assert (poly.flips, kalshi.flips) == (0, 0)
    # Opposites and negations are turned round and counted; two-word ones count once.
    assert question("Will Chen lose the 42 primary?").flips == 1
    assert question("Will Chen not lose the 42 primary?").flips == 2
    below = question("Will Rossi stay below 31°F?")
    assert (below.text, below.flips) == (question("Will Rossi reach 31°F?").text, 1)
    assert question("Fed won\u2019t cut in 2026").flips == 1
    assert question("Will Chen win?").names == {"chen"}


def test_suggestions_pair_the_same_question_and_orient_the_opposite_one() -> None:
    day = timedelta(days=1)
    markets = [
        _market("polymarket", "0xa", "Will Chen win the 42 primary?"),
        _market("polymarket", "0xb", "Will Duarte win the 42 primary?"),
        _market("polymarket", "0xc", "Crypto: see BTC above $57k by September 15?",
                end=END + 100 * day, category="Crypto"),
        _market("kalshi", "KX-A", "Chen to win the 42 primary? — Before Mar 4, 2027",
                end=END + day),
        _market("kalshi", "KX-C", "Crypto: will it see BTC below $57k? — Before Sep 16, 2027",
                end=END + 101 * day, category="Crypto"),
        # Lookalikes: another number; the same question months later; another name.
        _market("kalshi", "KX-N", "Chen to win the 43 primary? — Before Mar 3, 2027"),
        _market("kalshi", "KX-L", "Will Duarte win the 42 primary? — Before Aug 3, 2027",
                end=END + 150 * day),
        _market("kalshi", "KX-O", "Will Okafor win the 42 primary? — Before Mar 3, 2027"),
        # The same wording, another level: no pair.
        _market("polymarket", "0xd", "Will Rossi reach 31°F?", category="Weather"),
        _market("kalshi", "KX-R", "Will Rossi reach 32°F? — Before Mar 3, 2027",
                category="Weather"),
    ]  # fmt: skip
    found = suggest(markets)
    got = {(s.polymarket.native_id, s.kalshi.native_id, s.orientation) for s in found}
    assert got == {("0xa", "KX-A", "same"), ("0xc", "KX-C", "inverse")}
    best = found[0]
    assert (best.polymarket.native_id, best.score) == ("0xa", 99.0)  # a day apart costs 1
    assert "ends 1 day apart" in best.reason
    assert "inverse (below)" in found[1].reason
    # The entries load as a pairs file's.
    loaded = PairsFile.model_validate({"pairs": [s.entry() for s in found]}).pairs
    assert [(p.polymarket, p.kalshi, p.orientation) for p in loaded] == [
        ("0xa-slug", "KX-A", "same"),
        ("0xc-slug", "KX-C", "inverse"),
    ]
    # A lower bar lets the months-apart one in for a market without a pair; never twice.
    loose = suggest(markets, min_score=0)
    assert len({s.kalshi.native_id for s in loose}) == len(loose)
    assert ("0xb", "KX-L") in {(s.polymarket.native_id, s.kalshi.native_id) for s in loose}
    # What the pairs file has is left out.
    again = suggest(markets, taken=["0xa-slug", "KX-C"])
    assert not again


def test_categories_that_differ_cost_and_one_market_pairs_once() -> None:
    markets = [
        _market("polymarket", "0xa", "Will Chen win the 42 primary?"),
        _market("kalshi", "KX-1", "Will Chen win the 42 primary?", category="Politics"),
        _market("kalshi", "KX-2", "Chen to win the 42 primary?", end=END + timedelta(days=2)),
    ]
    (only,) = suggest(markets)
    assert only.kalshi.native_id == "KX-2"  # 98 against the other's 85
    assert precision_recall([("a", "b", "same")], [("a", "b", "inverse")]) == (0.0, 0.0)
