"""``movers tune``: what an alert would have sent over the stored history, with the thresholds,
timers and routes the shipped files and the exporter's settings hold today, and with candidate
thresholds.

    movers tune                                   # MarketMoveLarge, the last 7 days
    movers tune --window 5m --threshold 5,8,10,15 # what-if for one window
    movers tune --alert WhaleTrade --threshold 10000,25000,50000
    movers tune --alert WalletTrade
    movers tune --json                            # for scripts

The model is :mod:`exporter.tuning`'s; this module reads the database and prints.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from exporter.config import Settings
from exporter.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from exporter.storage.database import Database
    from exporter.tuning import Alerting, Outcome, Route, VolumeReplay

T = TypeVar("T")
ALERT = "MarketMoveLarge"
VENUES = ("polymarket", "kalshi")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tune = commands.add_parser(
        "tune",
        help="replay stored history through the alert rules: what would they have sent?",
        description="Replays the stored prices of the last days through MarketMoveLarge (or the "
        "stored trades through WhaleTrade or WalletTrade) as the rule files, the exporter's "
        "settings and Alertmanager's routes define it today, and prints the notifications per "
        "day, the markets that fired most and, with --threshold, a what-if table.",
    )
    tune.add_argument(
        "--alert",
        default=ALERT,
        help=f"the alert to replay: {ALERT} (default), CategorySurge, WhaleTrade, WalletTrade "
        "or VolumeSpike",
    )
    tune.add_argument(
        "--days", type=float, default=None, help="days of history (default: tune.days, 7)"
    )
    tune.add_argument(
        "--since", default=None, help="start of the replay, ISO 8601 (instead of --days)"
    )
    tune.add_argument("--until", default=None, help="end of the replay, ISO 8601 (default: now)")
    tune.add_argument("--window", default=None, help="the window of the what-if (5m, 1h, ...)")
    tune.add_argument(
        "--threshold",
        default=None,
        help="candidate thresholds for --window, comma-separated: pp (e.g. 5,8,10,15), or for "
        "CategorySurge moved markets (e.g. 3,5,8); for WhaleTrade, trade sizes (10000,25000); "
        "for VolumeSpike, factors of the median (3,5,10)",
    )
    tune.add_argument("--top", type=int, default=10, help="markets listed (default 10)")
    tune.add_argument(
        "--rules",
        type=Path,
        default=None,
        help="the alert rules folder (default: tune.rules, /etc/alerting/rules where compose "
        "mounts it, else ./alertmanager/rules)",
    )
    tune.add_argument(
        "--alertmanager",
        type=Path,
        default=None,
        help="alertmanager.yml (default: tune.alertmanager, else ./alertmanager/alertmanager.yml)",
    )
    tune.add_argument("--json", action="store_true", help="one JSON document instead of tables")


def _bad(flag: str, why: str) -> ConfigError:
    return ConfigError([(flag, why)], "arguments")


def run_tune(settings: Settings, args: argparse.Namespace) -> int:
    # Imported here: the `movers` command loads no database driver until a command needs one.

    from exporter.tuning import (
        BOUNDARIES,
        TRADE_ALERTS,
        alerting_files,
        load_replay,
        read_alerting,
        what_if,
    )

    default_rules, default_manager = alerting_files(settings.tune)
    rules = args.rules or default_rules
    manager = args.alertmanager or default_manager
    if args.alert in TRADE_ALERTS or args.alert == "VolumeSpike":
        return _run_trades(settings, args, read_alerting(rules, manager))
    if args.alert == "CategorySurge":
        return _run_surge(settings, args, read_alerting(rules, manager))
    if args.alert != ALERT:
        known = _alert_names(rules)
        replayed = ", ".join([ALERT, "CategorySurge", *TRADE_ALERTS, "VolumeSpike"])
        if args.alert in known or args.alert in SIGNALS:
            raise _bad("--alert", f"{args.alert} is not replayed (movers tune replays {replayed})")
        raise _bad(
            "--alert",
            f"no alert {args.alert!r} in {rules} or the exporter's signals (alerts: "
            f"{', '.join(sorted(known | set(SIGNALS)))})",
        )
    alerting = read_alerting(rules, manager)
    windows = settings.movers.labels
    days = _days(settings, args)
    candidates: list[float] = []
    if args.threshold is not None and args.window is None:
        raise _bad("--threshold", "needs --window: the window whose threshold is tried")
    if args.window is not None:
        if args.window not in windows:
            raise _bad(
                "--window",
                f"{args.window!r} is not a window the exporter computes "
                f"(movers.windows: {', '.join(windows)})",
            )
        if args.threshold is None:
            raise _bad("--window", "needs --threshold: the candidate thresholds in pp")
        try:
            candidates = [float(v) for v in args.threshold.split(",") if v.strip()]
        except ValueError:
            raise _bad("--threshold", f"{args.threshold!r} is not a list of numbers") from None
        if not candidates or any(not 0 < v <= 100 for v in candidates):
            raise _bad("--threshold", "give one or more thresholds in pp, each in (0, 100]")
    since, until = _span(args, days)
    replay = _loaded(
        settings,
        lambda db: load_replay(db, settings, alerting, since, until, args.window, candidates),
    )
    outcome = replay.run()
    if not outcome.routes:  # nothing fired: the route an alert would take
        sample = {**alerting.rule_labels, "alertname": ALERT, "venue": VENUES[0],
                  "window": next(iter(alerting.thresholds))}  # fmt: skip
        outcome.routes = {r.path: r for r in alerting.routes(sample)}
    report: dict[str, Any] = {
        "alert": ALERT,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "days": round(outcome.days, 3),
        "rule": {
            "thresholds_pp": alerting.thresholds,
            "for_seconds": alerting.for_seconds,
            "keep_firing_for_seconds": alerting.keep_firing_seconds,
            "min_abs_move_pp": settings.movers.export.min_abs_move_pp,
            "watched_markets": sum(1 for m in replay.markets if m.own_thresholds),
        },
        "routes": _routes(outcome.routes),
        **outcome.summary(),
        "windows": outcome.windows(),
        "top_markets": outcome.top_markets(args.top),
        "sources": list(alerting.sources),
        "boundaries": list(BOUNDARIES),
    }
    if candidates:
        report["what_if"] = {
            "window": args.window,
            "rows": what_if(replay, args.window, candidates),
        }
    return _emit(args, report, outcome, _print)


SIGNALS = (
    "WhaleTrade",
    "WalletTrade",
    "MarketListed",
    "MarketClosed",
    "MarketResolved",
    "LiquidityGap",
    "VolumeSpike",
)
"""The alerts the exporter posts itself (exporter/signals.py)."""


def _emit(
    args: argparse.Namespace,
    report: dict[str, Any],
    outcome: Outcome,
    show: Callable[[dict[str, Any]], None],
) -> int:
    """The report as one JSON document (with every predicted notification), or as tables."""
    if args.json:
        import orjson

        report["sent"] = outcome.listed()
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        show(report)
    return 0


def _days(settings: Settings, args: argparse.Namespace) -> float:
    days = settings.tune.days if args.days is None else args.days
    if days <= 0:
        raise _bad("--days", "must be more than zero")
    return float(days)


def _loaded(settings: Settings, load: Callable[[Database], Awaitable[T]]) -> T:
    """What ``load`` reads with a pool of the configured database (closed afterwards)."""

    async def run() -> T:
        from exporter.storage.database import Database
        from exporter.storage.db import create_pool

        pool = create_pool(settings.database)
        await pool.open(wait=True)
        try:
            return await load(Database(pool))
        finally:
            await pool.close()

    return asyncio.run(run())


def _span(args: argparse.Namespace, days: float) -> tuple[datetime, datetime]:
    until = _moment("--until", args.until) if args.until else datetime.now(UTC)
    since = _moment("--since", args.since) if args.since else until - timedelta(days=days)
    if since >= until:
        raise _bad("--since", f"{since.isoformat()} is not before --until {until.isoformat()}")
    return since, until


def _run_surge(settings: Settings, args: argparse.Namespace, alerting: Alerting) -> int:
    """``--alert CategorySurge``: the stored moves through the category aggregates' count and
    the rule's count, share and timers."""

    from exporter.tuning import BOUNDARIES, load_surge_replay

    if alerting.surge is None:
        raise _bad("--alert", f"no rule alerts CategorySurge in {args.rules or 'the rules'}")
    counts = alerting.surge.counts
    candidates: list[float] = []
    if args.threshold is not None and args.window is None:
        raise _bad("--threshold", "needs --window: the window whose count is tried")
    if args.window is not None:
        if args.window not in counts or args.window not in settings.movers.labels:
            raise _bad("--window", f"{args.window!r} is not a window CategorySurge has a count "
                       f"for (thresholds.yml: {', '.join(counts)})")  # fmt: skip
        if args.threshold is None:
            raise _bad("--window", "needs --threshold: the candidate counts of moved markets")
        try:
            candidates = [float(v) for v in args.threshold.split(",") if v.strip()]
        except ValueError:
            raise _bad("--threshold", f"{args.threshold!r} is not a list of numbers") from None
        if not candidates or any(v < 1 for v in candidates):
            raise _bad("--threshold", "give one or more counts of moved markets, each ≥ 1")
    days = _days(settings, args)
    since, until = _span(args, days)
    replay = _loaded(settings, lambda db: load_surge_replay(db, settings, alerting, since, until))
    outcome = replay.run()
    if not outcome.routes:
        sample = {**alerting.surge.rule_labels, "alertname": "CategorySurge",
                  "window": next(iter(counts))}  # fmt: skip
        outcome.routes = {r.path: r for r in alerting.routes(sample)}
    windows = {w: {"moved_markets": row.pop("threshold_pp"), **row}
               for w, row in outcome.windows().items()}  # fmt: skip
    for row in windows.values():
        row["categories"] = row.pop("markets")
    report: dict[str, Any] = {
        "alert": "CategorySurge",
        "since": since.isoformat(),
        "until": until.isoformat(),
        "days": round(outcome.days, 3),
        "rule": {
            "moved_markets": counts,
            "share": alerting.surge.share,
            "category_threshold_pp": settings.movers.category_threshold_pp,
            "for_seconds": alerting.surge.for_seconds,
            "keep_firing_for_seconds": alerting.surge.keep_firing_seconds,
        },
        "routes": _routes(outcome.routes),
        **outcome.summary(),
        "windows": windows,
        "top_categories": [
            {
                "category": m["market_id"],
                "notifications": m["notifications"],
                "windows": m["windows"],
            }
            for m in outcome.top_markets(args.top)
        ],
        "sources": list(alerting.sources),
        "boundaries": [
            "A category's size (the markets its share is of) is the open markets passing the "
            "filters that have a price in the span, counted as of now.",
            *BOUNDARIES,
        ],
    }
    if candidates:
        rows = []
        for value in candidates:
            tried = replay.run({**counts, args.window: value})
            new = tried.windows()[args.window]["notifications"]
            rows.append({"moved_markets": value, **tried.summary(), "window_notifications": new})
        report["what_if"] = {"window": args.window, "rows": rows}
    return _emit(args, report, outcome, _print_surge)


def _print_surge(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    rule = report["rule"]
    counts = ", ".join(f"{w} ≥ {n:g}" for w, n in rule["moved_markets"].items())
    console.print(
        f"[bold]{report['alert']}[/bold] replayed over {report['days']:g} days of stored prices "
        f"({report['since'][:16]} → {report['until'][:16]} UTC)\n"
        f"  moved markets (|move| ≥ {rule['category_threshold_pp']:g} pp): {counts}, and at "
        f"least {100 * rule['share']:g} % of the category; for {rule['for_seconds']:g} s, "
        f"keep_firing_for {rule['keep_firing_for_seconds']:g} s"
    )
    _print_routes(console, report["routes"])
    _print_summary(console, report)
    table = Table(title="Per window", title_justify="left")
    for column in ("Window", "Moved markets", "Notifications", "Per day", "Busiest day",
                   "Categories"):  # fmt: skip
        table.add_column(column, justify="left" if column == "Window" else "right")
    for window, row in report["windows"].items():
        day = row["busiest_day"]
        table.add_row(
            window, f"{row['moved_markets']:g}", str(row["notifications"]),
            f"{row['per_day_mean']:g}", f"{day['date'] or '-'} ({day['notifications']})",
            str(row["categories"]),
        )  # fmt: skip
    console.print(table)
    if report["top_categories"]:
        top = Table(title="Categories that would have fired most", title_justify="left")
        for column in ("Category", "Notifications", "Windows"):
            top.add_column(column)
        for c in report["top_categories"]:
            top.add_row(c["category"], str(c["notifications"]), ", ".join(c["windows"]))
        console.print(top)
    if "what_if" in report:
        what = report["what_if"]
        _print_what_if(console, f"What if {what['window']}'s count were…", "Moved markets",
                       what["rows"], lambda row: f"{row['moved_markets']:g}",
                       what["window"])  # fmt: skip


def _run_trades(settings: Settings, args: argparse.Namespace, alerting: Alerting) -> int:
    """``--alert WhaleTrade`` or ``WalletTrade``: the stored trades through the signals'
    settings and the route Alertmanager gives them."""

    from exporter.tuning import load_trade_replay, load_volume_replay, what_if_trades

    volume = args.alert == "VolumeSpike"
    if args.window is not None:
        raise _bad("--window", f"{args.alert} has no window to choose (signals.volume.window)"
                   if volume else f"{args.alert} has no window (it is one trade)")  # fmt: skip
    candidates: list[float] = []
    if args.threshold is not None:
        if args.alert == "WalletTrade":
            raise _bad("--threshold", f"{args.alert} has no threshold (any trade of a wallet)")
        try:
            candidates = [float(v) for v in args.threshold.split(",") if v.strip()]
        except ValueError:
            raise _bad("--threshold", f"{args.threshold!r} is not a list of numbers") from None
        if volume and (not candidates or any(v <= 1 for v in candidates)):
            raise _bad("--threshold", "give one or more factors of the median, each > 1")
        if not candidates or any(v <= 0 for v in candidates):
            raise _bad("--threshold", "give one or more trade sizes (USDC, dollars), each > 0")
    days = _days(settings, args)
    since, until = _span(args, days)
    signals = settings.signals
    if volume:
        volume_replay = _loaded(
            settings,
            lambda db: load_volume_replay(db, settings, alerting, since, until, candidates),
        )
        return _report_volume(args, alerting, volume_replay, candidates)
    replay = _loaded(
        settings,
        lambda db: load_trade_replay(db, settings, alerting, args.alert, since, until, candidates),
    )
    outcome = replay.run()
    signal = {
        "whale": replay.whales(),
        "wallets": len(signals.wallets),
        "watched_markets": len(replay.own_whale),
        "cooldown_seconds": signals.cooldown.total_seconds(),
        "max_per_minute": signals.max_per_minute,
        "resolve_after_seconds": signals.resolve_after.total_seconds(),
    }
    report = _signal_report(args, alerting, outcome, (since, until), "whale", signal, [
        "Trades are replayed as stored: one the exporter missed (a gap in its polls) was "
        "not notified, and one it saw late was notified late.",
        "The minute's budget (signals.max_per_minute) is shared with the signals not "
        "replayed (listings, resolutions, liquidity gaps, volume spikes).",
    ])  # fmt: skip
    if candidates:
        report["what_if"] = {"rows": what_if_trades(replay, candidates)}
    return _emit(args, report, outcome, _print_trades)


def _report_volume(
    args: argparse.Namespace, alerting: Alerting, replay: VolumeReplay, candidates: list[float]
) -> int:

    signals = replay.signals
    outcome = replay.run()
    config = signals.volume
    signal = {
        "factor": config.factor,
        "window_seconds": config.window.total_seconds(),
        "baseline_seconds": config.baseline.total_seconds(),
        "floor": replay.floors(),
        "every_seconds": config.every.total_seconds(),
        "cooldown_seconds": max(signals.cooldown, config.window).total_seconds(),
        "max_per_minute": signals.max_per_minute,
        "resolve_after_seconds": signals.resolve_after.total_seconds(),
    }
    span = (replay.since, replay.until)
    report = _signal_report(args, alerting, outcome, span, "floor", signal, [
        "The volume check is replayed every signals.volume.every from the replay's start; "
        "the exporter's own instants fall elsewhere in each interval.",
        "The minute's budget (signals.max_per_minute) is shared with the other signals.",
    ])  # fmt: skip
    if candidates:
        report["what_if"] = {
            "rows": [{"threshold": f, **replay.run(f).summary()} for f in candidates]
        }
    return _emit(args, report, outcome, _print_trades)


def _signal_report(
    args: argparse.Namespace,
    alerting: Alerting,
    outcome: Outcome,
    span: tuple[datetime, datetime],
    floor: str,
    signal: dict[str, Any],
    boundaries: list[str],
) -> dict[str, Any]:
    """The report of a replayed signal (whale and wallet trades, volume spikes): its settings,
    routes, counts per venue (each venue's floor under ``floor``) and top markets."""
    from exporter.tuning import BOUNDARIES

    if not outcome.routes:  # nothing was sent: the route such an alert would take
        sample = {"alertname": args.alert, "area": "signals", "venue": VENUES[0]}
        outcome.routes = {r.path: r for r in alerting.routes(sample)}
    venues = {venue: {floor: row.pop("threshold_pp"), **row}
              for venue, row in outcome.windows().items()}  # fmt: skip
    report: dict[str, Any] = {
        "alert": args.alert,
        "since": span[0].isoformat(),
        "until": span[1].isoformat(),
        "days": round(outcome.days, 3),
        "signal": signal,
        "routes": _routes(outcome.routes),
        **outcome.summary(),
        "venues": venues,
        "top_markets": outcome.top_markets(args.top),
        "sources": list(alerting.sources[1:]),
        "boundaries": [*boundaries, *BOUNDARIES[3:]],
    }
    for top in report["top_markets"]:
        top.pop("windows", None)
    return report


def _print_trades(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    signal = report["signal"]
    size_key = "floor" if "factor" in signal else "whale"
    sizes = ", ".join(f"{v} ≥ {n:,.0f}" for v, n in signal[size_key].items()) or "off"
    what = (f"{signal['factor']:g} times the median of its {signal['window_seconds']:g} s windows "
            f"over {signal['baseline_seconds']:g} s, and at least {sizes}" if size_key == "floor"
            else f"whale sizes: {sizes}; watched wallets {signal['wallets']}")  # fmt: skip
    console.print(
        f"[bold]{report['alert']}[/bold] replayed over {report['days']:g} days of stored trades "
        f"({report['since'][:16]} → {report['until'][:16]} UTC)\n"
        f"  {what}; cooldown {signal['cooldown_seconds']:g} s a market; at most "
        f"{signal['max_per_minute']} a minute; each ends after "
        f"{signal['resolve_after_seconds']:g} s"
    )
    _print_routes(console, report["routes"])
    _print_summary(console, report)
    table = Table(title="Per venue", title_justify="left")
    heading = "Floor" if size_key == "floor" else "Whale size"
    for column in ("Venue", heading, "Notifications", "Per day", "Busiest day", "Markets"):
        table.add_column(column, justify="left" if column == "Venue" else "right")
    for venue, row in report["venues"].items():
        day = row["busiest_day"]
        table.add_row(
            venue, f"{row[size_key]:,.0f}", str(row["notifications"]), f"{row['per_day_mean']:g}",
            f"{day['date'] or '-'} ({day['notifications']})", str(row["markets"]),
        )  # fmt: skip
    console.print(table)
    _print_top(console, report["top_markets"], with_windows=False)
    if "what_if" in report:
        tried = "factor" if size_key == "floor" else "whale size"
        digits = 1 if size_key == "floor" else 0
        _print_what_if(console, f"What if the {tried} were…", tried.capitalize(),
                       report["what_if"]["rows"], lambda row: f"{row['threshold']:,.{digits}f}",
                       None)  # fmt: skip


def _moment(flag: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(flag, f"{text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _alert_names(rules: Path) -> set[str]:
    import yaml

    names: set[str] = set()
    for path in sorted(rules.glob("*.y*ml")) if rules.is_dir() else []:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            continue
        for group in data.get("groups") or []:
            names |= {r["alert"] for r in group.get("rules") or [] if "alert" in r}
    return names


def _routes(routes: dict[str, Route]) -> list[dict[str, Any]]:
    """The routes the replayed alerts took to a chat, with their grouping and timers."""
    return [
        {
            "route": route.path,
            "receiver": route.receiver,
            "group_by": ["..."] if route.group_by is None else list(route.group_by),
            "group_wait_seconds": route.group_wait,
            "group_interval_seconds": route.group_interval,
            "repeat_interval_seconds": route.repeat_interval,
        }
        for route in routes.values()
    ]


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    rule = report["rule"]
    thresholds = ", ".join(f"{w} ≥ {pp:g} pp" for w, pp in rule["thresholds_pp"].items())
    console.print(
        f"[bold]{report['alert']}[/bold] replayed over {report['days']:g} days of stored prices "
        f"({report['since'][:16]} → {report['until'][:16]} UTC)\n"
        f"  thresholds: {thresholds}; for {rule['for_seconds']:g} s, keep_firing_for "
        f"{rule['keep_firing_for_seconds']:g} s; watched markets with their own: "
        f"{rule['watched_markets']}"
    )
    _print_routes(console, report["routes"])
    _print_summary(console, report)
    table = Table(title="Per window (the notifications each window was new in)",
                  title_justify="left")  # fmt: skip
    for column in ("Window", "Threshold", "Notifications", "Per day", "Busiest day", "Markets"):
        table.add_column(column, justify="left" if column == "Window" else "right")
    for window, row in report["windows"].items():
        day = row["busiest_day"]
        table.add_row(
            window, f"{row['threshold_pp']:g} pp", str(row["notifications"]),
            f"{row['per_day_mean']:g}", f"{day['date'] or '-'} ({day['notifications']})",
            str(row["markets"]),
        )  # fmt: skip
    console.print(table)
    _print_top(console, report["top_markets"], with_windows=True)
    if "what_if" in report:
        what = report["what_if"]
        _print_what_if(console, f"What if {what['window']}'s threshold were…", "Threshold",
                       what["rows"], lambda row: f"{row['threshold_pp']:g} pp",
                       what["window"])  # fmt: skip
    console.print("\n[dim]Not replayed: " + " ".join(report["boundaries"]) + "[/dim]")


__all__ = ["add_parser", "run_tune"]


def _print_routes(console: Console, routes: list[dict[str, Any]]) -> None:
    for route in routes:
        console.print(
            f"  routed to [bold]{route['receiver']}[/bold] ({route['route']}), grouped by "
            f"{', '.join(route['group_by'])}: group_wait {route['group_wait_seconds']:g} s, "
            f"group_interval {route['group_interval_seconds']:g} s, repeat "
            f"{route['repeat_interval_seconds']:g} s"
        )


def _print_summary(console: Console, report: dict[str, Any]) -> None:
    busiest = report["busiest_day"]
    console.print(
        f"\n[bold]{report['notifications']}[/bold] notifications: "
        f"{report['per_day_mean']:g} a day on average, busiest "
        f"{busiest['date'] or '-'} with {busiest['notifications']}"
    )


def _print_top(console: Console, markets: list[dict[str, Any]], *, with_windows: bool) -> None:
    from rich.table import Table

    if not markets:
        return
    top = Table(title="Markets that would have fired most", title_justify="left")
    columns = ["Market", "Venue", "Category", "Notifications"]
    for column in [*columns, "Windows"] if with_windows else columns:
        top.add_column(column, overflow="fold", max_width=56 if column == "Market" else None)
    for m in markets:
        cells = [m["title"], m["venue"], m["category"], str(m["notifications"])]
        top.add_row(*cells, *([", ".join(m["windows"])] if with_windows else []))
    console.print(top)


def _print_what_if(
    console: Console,
    title: str,
    heading: str,
    rows: list[dict[str, Any]],
    shown: Callable[[dict[str, Any]], str],
    window: str | None,
) -> None:
    """A what-if table: per candidate, the notifications (and those ``window`` was new in)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    columns = [heading, "Notifications", "Per day", "Busiest day"]
    for column in [*columns, f"New in {window}"] if window else columns:
        table.add_column(column, justify="right")
    for row in rows:
        day = row["busiest_day"]
        cells = [shown(row), str(row["notifications"]), f"{row['per_day_mean']:g}",
                 f"{day['date'] or '-'} ({day['notifications']})"]  # fmt: skip
        table.add_row(*cells, *([str(row["window_notifications"])] if window else []))
    console.print(table)
