"""``movers pairs suggest`` as a user runs it: the simulator's world (Polymarket markets, their
Kalshi twins, lookalikes asking another question, and thousands of unrelated markets) ingested
by ``movers run --once`` into a real database, then the command's suggestions held against the
world's labelled pairs (precision and recall, README "Cross-venue pairs"), written into a pairs
file that keeps its comments, and given bad arguments."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml

from exporter.config.pairs import load_pairs
from exporter.pairing import precision_recall
from exporter.sim import ManualClock, Simulator, load_scenario
from tests.support.databases import Database
from tests.support.running import run_once

pytestmark = pytest.mark.db

TWINS = 30
"""Twins (and as many lookalikes) in the labelled world."""
MIN_PRECISION = 0.95
MIN_RECALL = 0.9


async def _movers(config: Path, url: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", *args,
        env={**os.environ, "MOVERS_DATABASE_URL": url, "MOVERS_CONFIG": str(config)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_suggestions_find_the_worlds_pairs_and_write_them_into_the_file(
    pg: Database, tmp_path: Path
) -> None:
    scenario = load_scenario({
        "seed": 23, "universe": {"polymarket": 600, "kalshi": 900},
        "pairs": {"count": TWINS, "lookalikes": TWINS},
    })  # fmt: skip
    async with Simulator(scenario, clock=ManualClock(datetime.now(UTC))) as sim:
        assert sim.urls is not None
        venues = sim.urls.venues()
        for venue in ("polymarket", "kalshi"):
            venues[venue] |= {"hot_size": 5, "stream": {"enabled": False}}
        venues["kalshi"] |= {"requests_per_second": 50}
        pairs_file = tmp_path / "pairs.yaml"
        pairs_file.write_text("pairs: []\n")
        config = tmp_path / "movers.yaml"
        config.write_text(yaml.safe_dump({
            "venues": venues, "logging": {"format": "json"}, "backfill": {"enabled": False},
            "pairs": {"file": str(pairs_file)},
        }))  # fmt: skip
        code, err = await run_once(pg.url, config)
        assert code == 0, err[-3000:]
        world = sim.world
        truth = [
            (t.polymarket.slug, t.kalshi.key, "inverse" if t.inverse else "same")
            for t in world.twins
        ]

        code, out, err = await _movers(config, pg.url, "pairs", "suggest", "--json")
        assert code == 0, err
        rows = [orjson.loads(line) for line in out.splitlines()]
        suggested = [(r["polymarket"], r["kalshi"], r["orientation"]) for r in rows]
        precision, recall = precision_recall(suggested, truth)
        print(f"pairs suggest: precision {precision:.3f}, recall {recall:.3f} ({len(rows)} "
              f"suggested, {len(truth)} true pairs, {TWINS} lookalikes)")  # fmt: skip
        wrong = [r for r in rows if (r["polymarket"], r["kalshi"], r["orientation"]) not in truth]
        assert precision >= MIN_PRECISION, wrong
        assert recall >= MIN_RECALL, wrong
        assert all(r["score"] >= 80 and r["reason"] for r in rows)
        # No lookalike is suggested at all (another number, or months apart).
        decoys = {m.key for m in world.lookalikes}
        assert not decoys & {r["kalshi"] for r in rows}
        inverse = next(r for r in rows if r["orientation"] == "inverse")
        assert "inverse (" in inverse["reason"]

        # --write: the file's comments and pairs stay, the suggestions follow in its format,
        # the result loads; run again, nothing is suggested twice.
        first = truth[0]
        pairs_file.write_text(
            "# my pairs\npairs:\n"
            f"  - polymarket: {first[0]}\n    kalshi: {first[1]}\n"
            f"    orientation: {first[2]}\n    label: Mine\n"
        )
        code, out, err = await _movers(config, pg.url, "pairs", "suggest", "--write")
        assert code == 0, err
        text = pairs_file.read_text()
        assert text.startswith("# my pairs\npairs:\n  - polymarket: ")
        written = load_pairs(pairs_file)
        assert written[0].label == "Mine"
        assert len(written) == len(rows)
        assert {(p.polymarket, p.kalshi, p.orientation) for p in written} == set(suggested)
        code, out, err = await _movers(config, pg.url, "pairs", "suggest", "--json")
        assert (code, out) == (0, ""), err

        # A category no market has: nothing to suggest.
        code, out, err = await _movers(
            config, pg.url, "pairs", "suggest", "--json", "--category", "Nothing"
        )
        assert (code, out) == (0, ""), err

        # Bad arguments: exit 2 naming the flag.
        for args, flag in ((["--min-score", "120"], "--min-score"), (["--limit", "0"], "--limit")):
            code, _, err = await _movers(config, pg.url, "pairs", "suggest", *args)
            assert code == 2, err
            assert flag in err
        bare = tmp_path / "bare.yaml"
        bare.write_text(yaml.safe_dump({"venues": venues}))
        code, _, err = await _movers(bare, pg.url, "pairs", "suggest", "--write")
        assert code == 2, err
        assert "--write" in err
        assert "pairs.file" in err
