"""Field helpers every venue's parser shares: wire structs decoded from bytes (or converted
from an already-decoded message), times. Each takes the venue its errors belong to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from exporter.errors import ParseError
from exporter.model import Venue


def decoded(
    decoder: msgspec.json.Decoder[Any], raw: bytes | str | msgspec.Raw, kind: str, venue: Venue
) -> Any:
    """``raw`` decoded into ``decoder``'s type; a ``venue`` ParseError naming the field when it
    does not fit."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise ParseError(venue.value, kind, _where(exc)) from None
    except msgspec.DecodeError as exc:
        raise ParseError(venue.value, kind, f"not valid JSON: {exc}") from None


def converted(raw: object, wire: type[Any], kind: str, venue: Venue) -> Any:
    """An already-decoded ``raw`` (a dict from a test, a stream message) as the wire type."""
    if isinstance(raw, wire):
        return raw
    try:
        return msgspec.convert(raw, wire)
    except msgspec.ValidationError as exc:
        raise ParseError(venue.value, kind, _where(exc)) from None


def as_wire(
    raw: Any, wire: type[Any], decoder: msgspec.json.Decoder[Any], kind: str, venue: Venue
) -> Any:
    """``raw`` as the ``wire`` struct: itself, decoded from bytes, or converted from an already
    decoded object (a test's dict)."""
    if isinstance(raw, wire):
        return raw
    if isinstance(raw, bytes | msgspec.Raw):
        return decoded(decoder, raw, kind, venue)
    return converted(raw, wire, kind, venue)


def _where(exc: msgspec.ValidationError) -> str:
    """msgspec's "Expected `str | null`, got `int` - at `$.question`" as "question: expected
    `str | null`, got `int`"."""
    text = str(exc)
    reason, _, path = text.partition(" - at `$")
    field = path.rstrip("`").lstrip(".")
    return f"{field}: {reason[:1].lower()}{reason[1:]}" if field else text


def parse_time(value: object, kind: str, key: str, venue: Venue) -> datetime | None:
    """ISO 8601 with ``Z`` and any fraction, or the non-ISO ``2026-05-09 02:07:01+00``; a
    failure is ``venue``'s ."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ParseError(venue.value, kind, f"{key} is not a time: {value!r:.40}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ParseError(venue.value, kind, f"{key} is not a time: {value!r:.40}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def listing_time(value: object) -> datetime | None:
    """A market's creation time where the venue gives one; anything unreadable (or Go's zero
    time, which Kalshi sends for some markets) is unknown rather than an error: it only dates a
    listing signal."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def from_unix(seconds: float, kind: str, key: str, venue: Venue) -> datetime:
    """A unix time in seconds, refused when outside 1970..5138 rather than overflowing; a
    failure is ``venue``'s."""
    if not 0 <= seconds < 1e11:
        raise ParseError(venue.value, kind, f"{key} is out of range: {seconds}")
    return datetime.fromtimestamp(seconds, UTC)


# --- Gamma --------------------------------------------------------------------------------------
