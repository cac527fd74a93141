"""What every venue's jobs share: paging through a cursor, skipping malformed records alone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from exporter.errors import ParseError
from exporter.ingest.common import Rejects, cursor_pages

AT = datetime(2026, 12, 1, tzinfo=UTC)


async def test_cursor_pages_follow_the_cursor_until_none_or_the_limit() -> None:
    asked: list[str] = []
    pages = {"": {"n": 1, "cursor": "b"}, "b": {"n": 2, "cursor": "c"}, "c": {"n": 3}}

    async def fetch(cursor: str) -> tuple[dict[str, Any], datetime]:
        asked.append(cursor)
        return pages[cursor], AT

    seen = [page["n"] async for page, _ in cursor_pages(fetch, lambda p: p.get("cursor"))]
    assert (seen, asked) == ([1, 2, 3], ["", "b", "c"])
    asked.clear()
    limited = cursor_pages(fetch, lambda p: p.get("cursor"), limit=2)
    assert [page["n"] async for page, _ in limited] == [1, 2]
    assert asked == ["", "b"]


def test_a_malformed_record_is_counted_and_skipped_alone_with_its_bytes_as_sample() -> None:
    rejects = Rejects()

    def parse(raw: msgspec.Raw, scale: int) -> int:
        value = msgspec.json.decode(raw)
        if not isinstance(value, int):
            raise ParseError("kalshi", "market", "not a number")
        return value * scale

    raws = msgspec.json.decode(b'[1, "x", 3, {}]', type=list[msgspec.Raw])
    assert list(rejects.each(parse, raws, 10)) == [10, 30]
    assert rejects.counts == {("kalshi", "market"): 2}
