"""``movers pairs suggest``: candidate cross-venue pairs from the stored open markets, with a
score and the reason, and ``--write`` to add them to the pairs file.

    movers pairs suggest                          # a table, best first
    movers pairs suggest --category Economics --min-score 90
    movers pairs suggest --json                   # one JSON object a line
    movers pairs suggest --write                  # append them to pairs.file
    movers pairs suggest --write ./config/pairs.yaml

The matching is :mod:`exporter.pairing`'s; this module reads the database and writes.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import yaml

from exporter.config import Settings
from exporter.config.pairs import load_pairs
from exporter.errors import ConfigError

if TYPE_CHECKING:
    from exporter.pairing import Suggestion
    from exporter.storage.pairs import OpenMarket


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pairs = commands.add_parser("pairs", help="cross-venue pairs: suggest candidates")
    actions = pairs.add_subparsers(dest="pairs_command", required=True, metavar="ACTION")
    suggest = actions.add_parser(
        "suggest",
        help="propose Polymarket/Kalshi pairs from the stored open markets",
        description="Compares the stored open markets of both venues (titles, numbers, names, "
        "end dates, categories) and prints the likely pairs, best first, with a score and the "
        "reason. Pairs already in the pairs file are left out.",
    )
    suggest.add_argument("--category", default=None, help="only markets of this category")
    suggest.add_argument(
        "--min-score", type=float, default=None, help="lowest score suggested, 0-100 (default 80)"
    )
    suggest.add_argument("--limit", type=int, default=None, help="suggestions at most")
    suggest.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    suggest.add_argument(
        "--write",
        nargs="?",
        const="",
        default=None,
        metavar="FILE",
        help="append the suggestions to the pairs file (default: pairs.file)",
    )


def run_pairs(settings: Settings, args: argparse.Namespace) -> int:
    from exporter.pairing import MIN_SCORE, suggest

    min_score = MIN_SCORE if args.min_score is None else args.min_score
    if not 0 <= min_score <= 100:
        raise ConfigError([("--min-score", f"{min_score:g} is not between 0 and 100")], "arguments")
    if args.limit is not None and args.limit < 1:
        raise ConfigError([("--limit", "must be 1 or more")], "arguments")
    target = _target(settings, args.write)
    existing = load_pairs(target if target is not None and target.exists() else settings.pairs.file)
    taken = [r for p in existing for r in (p.polymarket, p.kalshi)]
    markets = _open_markets(settings, args.category)
    found = suggest(markets, min_score=min_score, taken=taken)[: args.limit]
    if args.json:
        for s in found:
            sys.stdout.write(orjson.dumps(_row(s)).decode() + "\n")
    else:
        _print(found, len(markets))
    if target is not None and found:
        _append(target, [s.entry() for s in found])
        print(f"{len(found)} pairs added to {target}", file=sys.stderr)
    return 0


def _target(settings: Settings, write: str | None) -> Path | None:
    if write is None:
        return None
    if write:
        return Path(write)
    if settings.pairs.file is None:
        raise ConfigError([("--write", "no file given and pairs.file is not set")], "arguments")
    return settings.pairs.file


def _open_markets(settings: Settings, category: str | None) -> list[OpenMarket]:
    async def run() -> list[OpenMarket]:
        from exporter.storage.database import Database
        from exporter.storage.db import create_pool
        from exporter.storage.pairs import open_markets

        pool = create_pool(settings.database)
        await pool.open(wait=True)
        try:
            return await open_markets(Database(pool), category)
        finally:
            await pool.close()

    return asyncio.run(run())


def _row(s: Suggestion) -> dict[str, object]:
    return s.entry() | {
        "score": s.score,
        "reason": s.reason,
        "polymarket_title": s.polymarket.title,
        "kalshi_title": s.kalshi.title,
        "polymarket_url": s.polymarket.url,
        "kalshi_url": s.kalshi.url,
    }


def _print(found: list[Suggestion], compared: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not found:
        console.print(f"No pair found among {compared} open markets.")
        return
    table = Table(title=f"Suggested pairs ({len(found)}, from {compared} open markets)")
    for column in ("score", "Polymarket", "Kalshi", "orientation", "why"):
        table.add_column(column, overflow="fold")
    for s in found:
        table.add_row(
            f"{s.score:.0f}",
            f"{s.polymarket.title}\n[dim]{s.polymarket.slug or s.polymarket.native_id}"
            f" · {s.polymarket.outcome}[/dim]",
            f"{s.kalshi.title}\n[dim]{s.kalshi.native_id}[/dim]",
            s.orientation,
            s.reason,
        )
    console.print(table)


def _append(path: Path, entries: list[dict[str, str]]) -> None:
    """The entries at the end of the file's ``pairs:`` list, the rest of the file (comments
    included) as it was; a new file, or one without pairs, gets the list."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    data = yaml.safe_load(text) if text.strip() else None
    block = yaml.safe_dump(entries, sort_keys=False, allow_unicode=True, width=1000)
    # The file's own indentation of its list (the pairs key is the file's only one, so the
    # list runs to its end).
    found = re.search(r"^( *)- ", text, re.MULTILINE)
    indent = found.group(1) if found else "  "
    listed = "".join(indent + line + "\n" for line in block.splitlines())
    if not isinstance(data, dict) or not data.get("pairs"):
        # No list to extend (an empty file, or `pairs: []`): a fresh one.
        kept = "".join(
            line + "\n" for line in text.splitlines() if not line.lstrip().startswith("pairs:")
        )
        path.write_text(kept + "pairs:\n" + listed, encoding="utf-8")
    else:
        tail = "" if text.endswith("\n") else "\n"
        path.write_text(text + tail + listed, encoding="utf-8")
    load_pairs(path)  # what was written loads
