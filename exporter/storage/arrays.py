"""Whole-column binary array parameters for the bulk inserts.

psycopg dumps a Python list element by element in Python (~1 µs each); the writer sends eight
5,000-element arrays per batch, which made dumping cost more than the server's insert. These
dumpers pack a whole column with one ``struct.pack`` call into PostgreSQL's binary array format
(ndim, has-nulls flag, element oid, length, lower bound, then length-prefixed elements), about
3x faster. They apply only to the marker types below, through the adapter context the pool's
connections are opened with (``ADAPTERS``); plain lists keep psycopg's own dumpers.
"""

from __future__ import annotations

import functools
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import AdaptersMap, Dumper
from psycopg.pq import Format

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_FLOAT8, _TIMESTAMPTZ, _TEXT = 701, 1184, 25
_FLOAT8_ARRAY, _TIMESTAMPTZ_ARRAY, _TEXT_ARRAY = 1022, 1185, 1009


class Float8Array(list[float | None]):
    """A float8[] parameter (None is NULL)."""


class TimestamptzArray(list[datetime]):
    """A timestamptz[] parameter of aware datetimes (no NULLs)."""


class TextArray(list[str | None]):
    """A text[] parameter (None is NULL)."""


def _header(oid: int, count: int, has_nulls: bool) -> tuple[str, list[object]]:
    if count == 0:
        return ">iiI", [0, 0, oid]
    return ">iiIii", [1, int(has_nulls), oid, count, 1]


def pack_float8(values: list[float | None]) -> bytes:
    has_nulls = None in values
    fmt, args = _header(_FLOAT8, len(values), has_nulls)
    if has_nulls:
        fmt += "".join("i" if v is None else "id" for v in values)
        args += [x for v in values for x in ((-1,) if v is None else (8, v))]
        return struct.pack(fmt, *args)
    return struct.pack(fmt + "id" * len(values), *args, *_prefixed(8, values))


def _prefixed(width: int, values: list[Any]) -> list[Any]:
    """``[width, v0, width, v1, …]``, by slice assignment (C speed, no tuple per element)."""
    out: list[Any] = [width, None] * len(values)
    out[1::2] = values
    return out


def pack_timestamptz(values: list[datetime]) -> bytes:
    fmt, args = _header(_TIMESTAMPTZ, len(values), False)
    micros = [(v - _PG_EPOCH) // _MICROSECOND for v in values]
    return struct.pack(fmt + "iq" * len(values), *args, *_prefixed(8, micros))


def pack_text(values: list[str | None]) -> bytes:
    encoded = [None if v is None else v.encode() for v in values]
    has_nulls = None in encoded
    fmt, args = _header(_TEXT, len(values), has_nulls)
    head = struct.pack(fmt, *args)
    # Each element: its length (big-endian int32; -1 is NULL), then its bytes.
    lengths = [_NULL if e is None else _length(len(e)) for e in encoded]
    parts: list[bytes] = [b""] * (2 * len(encoded))
    parts[0::2] = lengths
    parts[1::2] = [b"" if e is None else e for e in encoded]
    return head + b"".join(parts)


_NULL = struct.pack(">i", -1)


@functools.lru_cache(maxsize=1024)
def _length(size: int) -> bytes:
    return struct.pack(">i", size)


class _Float8ArrayDumper(Dumper):
    format = Format.BINARY
    oid = _FLOAT8_ARRAY

    def dump(self, obj: Float8Array) -> Buffer:
        return pack_float8(obj)


class _TimestamptzArrayDumper(Dumper):
    format = Format.BINARY
    oid = _TIMESTAMPTZ_ARRAY

    def dump(self, obj: TimestamptzArray) -> Buffer:
        return pack_timestamptz(obj)


class _TextArrayDumper(Dumper):
    format = Format.BINARY
    oid = _TEXT_ARRAY

    def dump(self, obj: TextArray) -> Buffer:
        return pack_text(obj)


ADAPTERS = AdaptersMap(psycopg.adapters)
ADAPTERS.register_dumper(Float8Array, _Float8ArrayDumper)
ADAPTERS.register_dumper(TimestamptzArray, _TimestamptzArrayDumper)
ADAPTERS.register_dumper(TextArray, _TextArrayDumper)
