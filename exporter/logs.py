"""Structured logs: JSON lines in containers, readable key=value on a terminal."""

from __future__ import annotations

import logging
import sys

import structlog

from exporter.config import LoggingConfig


def configure_logging(cfg: LoggingConfig) -> None:
    level = getattr(logging, cfg.level.upper())
    json_lines = cfg.format == "json" or (cfg.format == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Libraries log through the standard library: same format, same stream.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # Expected by design and reported by the exporter's own transitions ("job failing",
    # "job recovered"): a skipped overlapping run, a connection attempt during an outage.
    # httpx would log every request at info.
    for noisy, floor in QUIET.items():
        logging.getLogger(noisy).setLevel(max(level, floor))


QUIET = {
    "apscheduler": logging.ERROR,
    "psycopg.pool": logging.ERROR,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
}
