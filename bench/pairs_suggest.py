"""``movers pairs suggest``'s matcher on the simulator's labelled worlds: precision, recall and
time at the demo's size and larger.

``python -m bench.pairs_suggest [--scales 1,3,10]`` builds, for each scale, the demo's world
(2,000 Polymarket and 3,000 Kalshi markets, 40 twins and 40 lookalikes) times the scale, hands
its open markets to :func:`exporter.pairing.suggest` as the database would give them (the
stored titles: Kalshi's event title and yes sub-title; categories through the category map),
and scores the suggestions against ``World.twins``, orientation included. The database read
is left out (one query); tests/e2e/test_pairs_suggest.py runs the whole command. Results:
bench/results/pairs_suggest.json.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from bench.common import write_result
from exporter.categories import load_categories
from exporter.pairing import precision_recall, suggest
from exporter.sim import load_scenario
from exporter.sim.world import KalshiMarket, PolyMarket, World
from exporter.storage.pairs import OpenMarket


def _stored(world: World) -> list[OpenMarket]:
    categories = load_categories()
    markets: list[OpenMarket] = []
    for pm in world.open_markets("polymarket"):
        assert isinstance(pm, PolyMarket)
        category = categories.polymarket([(slug, label) for _, label, slug in pm.event.tags])
        markets.append(OpenMarket(
            "polymarket", pm.key, pm.slug, pm.title, category, pm.end, None, pm.outcomes[0]
        ))  # fmt: skip
    for km in world.open_markets("kalshi"):
        assert isinstance(km, KalshiMarket)
        title = f"{km.event.title} — {km.yes_sub_title}"
        category = categories.kalshi(km.event.series.category)
        markets.append(OpenMarket("kalshi", km.key, None, title, category, km.end, None, "Yes"))
    return markets


def run(scale: int) -> dict[str, Any]:
    scenario = load_scenario({
        "seed": 2026, "universe": {"polymarket": 2000 * scale, "kalshi": 3000 * scale},
        "pairs": {"count": 40 * scale, "lookalikes": 40 * scale},
    })  # fmt: skip
    world = World(scenario, datetime.now(UTC))
    markets = _stored(world)
    started = time.perf_counter()
    found = suggest(markets)
    seconds = time.perf_counter() - started
    truth = [
        (t.polymarket.key, t.kalshi.key, "inverse" if t.inverse else "same") for t in world.twins
    ]
    got = [(s.polymarket.native_id, s.kalshi.native_id, s.orientation) for s in found]
    precision, recall = precision_recall(got, truth)
    return {
        "scale": scale,
        "open_markets": len(markets),
        "twins": len(world.twins),
        "lookalikes": len(world.lookalikes),
        "suggested": len(found),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "seconds": round(seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", default="1,3,10")
    args = parser.parse_args()
    results = [run(int(scale)) for scale in args.scales.split(",")]
    for result in results:
        print(result)
    write_result("pairs_suggest", {"runs": results})


if __name__ == "__main__":
    main()
