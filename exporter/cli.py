"""The ``movers`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import structlog
import yaml

from exporter import __version__
from exporter import pairs_command as pairs_cli
from exporter import tune_command as tune_cli
from exporter.config import Settings, format_duration, load_settings, redacted, secret_values
from exporter.config.backfill import FIDELITIES
from exporter.errors import ConfigError, ExporterError
from exporter.logs import configure_logging
from exporter.sim import cli as sim_cli

EXIT_CONFIG = 2
EXIT_FAILURE = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="movers",
        description="Prediction-market movers: ingest Polymarket and Kalshi into TimescaleDB.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="YAML configuration (default: $MOVERS_CONFIG, else ./movers.yaml)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("check-config", help="print the effective configuration, secrets redacted")
    commands.add_parser("migrate", help="create or upgrade the database schema")
    commands.add_parser(
        "maintain", help="run exporter-managed rollups and retention once (non-TimescaleDB)"
    )
    run = commands.add_parser("run", help="migrate, then run the exporter until stopped")
    run.add_argument("--once", action="store_true", help="one pass of every job, then exit")
    top = commands.add_parser("top", help="print the top movers of a window (from the database)")
    top.add_argument("--window", default=None, help="5m, 15m, 1h, 24h... (default: the first)")
    top.add_argument("--category", default=None, help="only this category")
    top.add_argument("--venue", choices=["polymarket", "kalshi"], default=None)
    top.add_argument("--limit", type=int, default=20, help="rows (default 20)")
    top.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    sim_cli.add_parser(commands)
    _add_backfill(commands)
    tune_cli.add_parser(commands)
    pairs_cli.add_parser(commands)
    return parser


def _add_backfill(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backfill = commands.add_parser(
        "backfill", help="fetch the venues' price history into the database now"
    )
    backfill.add_argument("--venue", choices=["polymarket", "kalshi"], default=None)
    backfill.add_argument(
        "--market",
        action="append",
        default=None,
        metavar="ID",
        help="only this market (Polymarket slug or condition id, Kalshi market or event "
        "ticker); repeatable",
    )
    backfill.add_argument("--since", default=None, help="how far back, e.g. 7d, 30d")
    backfill.add_argument(
        "--fidelity",
        choices=[format_duration(f) for f in FIDELITIES],
        default=None,
        help="resolution of every outcome (default: backfill.hot_fidelity for the hot set "
        "and --market, backfill.others_fidelity for the rest)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "sim":  # needs no configuration or database
        return sim_cli.run(args)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"movers: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check-config":
        yaml.safe_dump(redacted(settings), sys.stdout, sort_keys=False)
        return 0
    configure_logging(settings.logging, secret_values(settings))
    try:
        return _dispatch(args.command, settings, args)
    except ConfigError as exc:
        print(f"movers: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ExporterError as exc:
        structlog.get_logger("exporter").error("failed", command=args.command, error=str(exc))
        return EXIT_FAILURE


def _dispatch(command: str, settings: Settings, args: argparse.Namespace) -> int:
    # Imported here so `check-config` stays fast and needs no database driver at all.
    import asyncio

    from exporter.service import maintain_once, start
    from exporter.storage.db import prepare_schema

    log = structlog.get_logger("exporter")
    if command == "migrate":
        report = prepare_schema(settings)
        log.info(
            "schema ready",
            mode=report.mode.value,
            applied=report.applied or "nothing to do",
            timescaledb=report.capabilities.extension_installed,
        )
        return 0
    if command == "maintain":
        report = prepare_schema(settings)
        result = asyncio.run(maintain_once(settings, report.mode))
        log.info("maintenance done", mode=report.mode.value, **result)
        return 0
    if command == "top":
        from exporter.top import show_top

        return show_top(settings, args)
    if command == "backfill":
        from exporter.backfill_command import run_backfill

        return run_backfill(settings, args)
    if command == "tune":
        return tune_cli.run_tune(settings, args)
    if command == "pairs":
        return pairs_cli.run_pairs(settings, args)
    return start(settings, once=bool(args.once))
