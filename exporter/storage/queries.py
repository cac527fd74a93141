"""The statements kept as ``.sql`` files (``exporter/sql/queries/``), read once per process.

A file may include a shared fragment on a line of its own, as psql does: ``\\ir fragment.sql``
(the path relative to the queries folder). The files ship in the wheel as package data.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

QUERIES = Path(__file__).resolve().parents[1] / "sql" / "queries"
_INCLUDE = re.compile(r"^\\ir (?P<file>[\w./-]+\.sql)[ \t]*$", re.MULTILINE)


@cache
def query(name: str) -> str:
    """The statement of ``<name>.sql``, its includes replaced by their files' text."""
    return _INCLUDE.sub(lambda m: query(m["file"].removesuffix(".sql")).rstrip("\n"),
                        (QUERIES / f"{name}.sql").read_text())  # fmt: skip
