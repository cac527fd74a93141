"""Structured logs: JSON lines in containers, readable key=value on a terminal."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import stamina
import structlog

from exporter.config import LoggingConfig

# Header lines a library may log at debug (websockets logs every handshake header): their values
# are credentials, whatever the configured secrets are.
_HEADERS = re.compile(
    r"(?im)\b(kalshi-access-(?:key|signature|timestamp)|authorization|proxy-authorization"
    r"|cookie|set-cookie|x-api-key)(\s*[:=]\s*)[^\r\n,'\"}]+"
)


class Redactor:
    """A structlog processor, for the exporter's own events and every library's records alike,
    that masks the configured secret values and credential headers in every string logged."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _HEADERS.sub(r"\1\2***", text)

    def clean(self, value: Any) -> Any:
        """``value`` with every string in it scrubbed, its shape kept."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.clean(k): self.clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.clean(v) for v in value)
        return value

    def __call__(
        self, _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in event.items():
            if not key.startswith("_"):
                event[key] = self.clean(value)
        return event


def configure_logging(cfg: LoggingConfig, secrets: Iterable[str] = ()) -> None:
    """Logs at ``cfg.level`` in ``cfg.format``; ``secrets`` (and credential headers) never appear
    in any line, the libraries' debug output included."""
    level = getattr(logging, cfg.level.upper())
    redact = Redactor(secrets)
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
            redact,
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
                structlog.processors.format_exc_info,
                redact,
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
    # stamina logs every scheduled retry at warning; retries are counted instead
    # (movers_venue_retries_total), and a job logs once when it starts failing and recovers.
    stamina.instrumentation.set_on_retry_hooks([])


QUIET = {
    "apscheduler": logging.ERROR,
    "psycopg.pool": logging.ERROR,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
}
