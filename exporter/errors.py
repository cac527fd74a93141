"""The exporter's exception tree; third-party errors are translated into it at each adapter
(httpx in ``venues/http.py``, psycopg and its pool in ``storage/database.py``).

ExporterError
├── ConfigError            bad configuration: fatal at start-up, exit code 2
├── VenueError             a venue request failed
│   ├── VenueUnavailable   timeouts, connection errors, 5xx: retryable
│   ├── RateLimited        429 (``retry_after`` seconds when the venue says)
│   └── VenueRejected      4xx other than 429: not retryable
├── ParseError             one payload record is malformed: count, log a sample, skip it
└── StorageError
    ├── StorageUnavailable the database cannot be reached: retryable, rows are buffered
    ├── StorageRejected    the database refuses a value: retrying the same rows cannot help
    └── SchemaError        the schema or the server's capabilities do not fit: fatal
"""

from __future__ import annotations

from collections.abc import Sequence


class ExporterError(Exception):
    """Base of every error the exporter raises on purpose."""


class ConfigError(ExporterError):
    """The configuration is invalid; ``problems`` lists ``(yaml.path, why)`` pairs."""

    def __init__(self, problems: Sequence[tuple[str, str]], source: str = "configuration") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  {path}: {why}" for path, why in self.problems)
        super().__init__(f"invalid {source}:\n{lines}")


class VenueError(ExporterError):
    """A request to a venue failed."""

    def __init__(self, venue: str, endpoint: str, message: str) -> None:
        self.venue = venue
        self.endpoint = endpoint
        super().__init__(f"{venue} {endpoint}: {message}")


class VenueUnavailable(VenueError):
    """Timeout, connection failure or 5xx: worth retrying."""


class RateLimited(VenueError):
    """The venue answered 429."""

    def __init__(
        self, venue: str, endpoint: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(venue, endpoint, message)
        self.retry_after = retry_after


class VenueRejected(VenueError):
    """The venue refused the request (4xx other than 429): retrying will not help."""

    def __init__(self, venue: str, endpoint: str, message: str, status: int | None = None) -> None:
        super().__init__(venue, endpoint, message)
        self.status = status


class ParseError(ExporterError):
    """One record of a venue payload is malformed."""

    def __init__(self, venue: str, kind: str, message: str) -> None:
        self.venue = venue
        self.kind = kind
        super().__init__(f"{venue} {kind}: {message}")


class StorageError(ExporterError):
    """A database operation failed."""


class StorageUnavailable(StorageError):
    """The database cannot be reached right now."""


class StorageRejected(StorageError):
    """The database refused a value (a constraint, a type): retrying the same rows cannot help."""


class SchemaError(StorageError):
    """The database schema or server capabilities do not match what the exporter needs."""


class NotLeader(StorageError):
    """A singleton job's write from a collector that does not hold the lease (any more)."""
