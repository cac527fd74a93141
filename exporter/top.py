"""``movers top``: the stored ranking of one window as a terminal table (or JSON lines)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import asdict

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from exporter.config import Settings
from exporter.errors import ConfigError
from exporter.model import Mover
from exporter.storage.db import connect_async
from exporter.storage.movers import read_movers


def show_top(settings: Settings, args: argparse.Namespace) -> int:
    windows = list(settings.movers.labels)
    window = args.window or windows[0]
    if window not in windows:
        problem = ("--window", f"{window!r} is not one of movers.windows {windows}")
        raise ConfigError([problem], "arguments")
    movers = asyncio.run(_read(settings, window, args))
    if args.json:
        for mover in movers:
            sys.stdout.buffer.write(orjson.dumps(asdict(mover)) + b"\n")
        return 0
    console = Console()
    if not movers:
        console.print(
            f"No movers stored for {window}"
            + (f" in {args.category}" if args.category else "")
            + (f" on {args.venue}" if args.venue else "")
            + " yet: `movers run` refreshes them every movers.every."
        )
        return 0
    console.print(render(movers, window))
    return 0


async def _read(settings: Settings, window: str, args: argparse.Namespace) -> list[Mover]:
    async with await connect_async(settings.database) as conn:
        return await read_movers(
            conn, window, category=args.category, venue=args.venue, limit=args.limit
        )


def render(movers: list[Mover], window: str) -> Table:
    computed = movers[0].computed_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    table = Table(title=f"Top movers, {window} (computed {computed})", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("Market", overflow="fold", max_width=48)
    table.add_column("Outcome", max_width=16)
    table.add_column("Then → now", justify="right", no_wrap=True)
    table.add_column("Move", justify="right", no_wrap=True)
    table.add_column("Vol 24h", justify="right")
    table.add_column("Spread", justify="right")
    table.add_column("Category")
    table.add_column("Venue")
    table.add_column("Link", overflow="fold")
    for m in movers:
        colour = "green" if m.move_pp > 0 else "red"
        table.add_row(
            str(m.rank),
            m.title,
            m.outcome,
            f"{m.price_then * 100:.1f}¢ → {m.price_now * 100:.1f}¢",
            Text(f"{m.move_pp:+.1f} pp", style=colour),
            "-" if m.volume_24h is None else f"{m.volume_24h:,.0f}",
            "-" if m.spread is None else f"{m.spread * 100:.1f}¢",
            m.category,
            m.venue,
            Text(m.url or "", style=f"link {m.url}" if m.url else ""),
        )
    return table
