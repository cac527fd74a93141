"""Whole-column binary array parameters for the bulk inserts.

psycopg dumps a Python list element by element in Python (~1 µs each); the writer sends eight
5,000-element arrays per batch, which made dumping cost more than the server's insert. These
dumpers pack a whole column with one ``struct.pack`` call into PostgreSQL's binary array format
(ndim, has-nulls flag, element oid, length, lower bound, then length-prefixed elements), about
3x faster. They apply only to the marker types below, through the adapter context the pool's
connections are opened with (``ADAPTERS``); plain lists keep psycopg's own dumpers.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

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
    else:
        fmt += "id" * len(values)
        args += [x for v in values for x in (8, v)]
    return struct.pack(fmt, *args)


def pack_timestamptz(values: list[datetime]) -> bytes:
    fmt, args = _header(_TIMESTAMPTZ, len(values), False)
    fmt += "iq" * len(values)
    args += [x for v in values for x in (8, (v - _PG_EPOCH) // _MICROSECOND)]
    return struct.pack(fmt, *args)


def pack_text(values: list[str | None]) -> bytes:
    encoded = [None if v is None else v.encode() for v in values]
    has_nulls = None in encoded
    fmt, args = _header(_TEXT, len(values), has_nulls)
    fmt += "".join("i" if e is None else f"i{len(e)}s" for e in encoded)
    args += [x for e in encoded for x in ((-1,) if e is None else (len(e), e))]
    return struct.pack(fmt, *args)


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
