"""The statements kept as .sql files, and the one statement built in code."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exporter.config import MoversConfig
from exporter.storage.movers import advance_sql, query_parameters
from exporter.storage.queries import QUERIES, query

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@pytest.mark.parametrize("path", sorted(QUERIES.glob("*.sql")), ids=lambda p: p.name)
def test_every_file_reads_whole_with_its_includes(path: Path) -> None:
    text = query(path.stem)
    assert "\\ir" not in text  # every include replaced
    assert text.strip()
    # A lone % would be taken for a placeholder by the driver: none but the named ones.
    assert "%" not in PLACEHOLDER.sub("", text)


def test_an_include_is_the_fragment_s_text() -> None:
    fragment = query("movers_ranked")
    assert fragment.strip().startswith("-- Included by")
    for name in ("movers_share", "movers_naive"):
        assert fragment.rstrip("\n") in query(name)


def test_the_refresh_statements_get_every_parameter_they_name() -> None:
    given = set(query_parameters(MoversConfig(), datetime(2026, 1, 1, tzinfo=UTC)))
    for name in ("movers_share", "movers_merge", "movers_naive"):
        assert set(PLACEHOLDER.findall(query(name))) <= given, name
    assert set(PLACEHOLDER.findall(advance_sql(4))) <= given | {"since", "at"}


@pytest.mark.parametrize("windows", [1, 2, 7])
def test_the_advance_moves_now_and_each_window_s_start(windows: int) -> None:
    text = advance_sql(windows)
    # One slice per boundary: now is k = 1, window i's start k = i + 1.
    assert f"FILTER (WHERE k = {windows + 1})" in text
    assert f"FILTER (WHERE k = {windows + 2})" not in text
    # Each window's start is replaced only by a newer price, and the row only when one moved.
    assert text.count("EXCLUDED.then_price[") == windows
    where = text.rsplit("WHERE", 1)[1]
    assert where.count(" OR ") == windows


def test_an_advance_needs_a_window() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        advance_sql(0)
