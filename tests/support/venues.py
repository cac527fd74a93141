"""Recorded venue payloads (tests/fixtures/venues, copied from shared/venues) and shape checks."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

FIXTURES = Path(__file__).parents[1] / "fixtures" / "venues"


def recording(path: str) -> Any:
    """One recorded payload (a fresh copy): ``"polymarket/clob_book_2024-10.json"``."""
    return json.loads(_text(path))


@functools.cache
def _text(path: str) -> str:
    return (FIXTURES / path).read_text(encoding="utf-8")


def recorded_lines(path: str) -> list[Any]:
    """The objects of a ``.jsonl`` recording."""
    text = (FIXTURES / path).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"  # JSON has one number type; 1 and 1.0 are the same to a parser
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape_problems(
    served: list[dict[str, Any]],
    recorded: list[dict[str, Any]],
    *,
    optional: frozenset[str] = frozenset(),
    documented: frozenset[str] = frozenset(),
    path: str = "",
) -> list[str]:
    """How served objects differ from recorded ones: keys no recording has (unless
    ``documented``: newer than the recordings, per API_NOTES), keys every recording has that were
    not served (unless ``optional``), and JSON types that differ. Nested objects and arrays of
    objects are compared the same way."""
    problems: list[str] = []
    recorded_keys = [set(r) for r in recorded]
    union = set().union(*recorded_keys)
    common = set.intersection(*recorded_keys)
    served_keys = set().union(*(set(s) for s in served))
    for key in sorted(served_keys - union - documented):
        problems.append(f"{path}{key}: served but in no recording")
    for key in sorted(common - served_keys - optional):
        problems.append(f"{path}{key}: in every recording but not served")
    for key in sorted(served_keys & union):
        seen = {json_type(r[key]) for r in recorded if key in r}
        values = [s[key] for s in served if key in s]
        for value in values:
            kind = json_type(value)
            if seen != {"null"} and kind not in seen:
                problems.append(f"{path}{key}: served {kind}, recorded {sorted(seen)}")
                break
        nested_served = [v for v in values if isinstance(v, dict)]
        nested_recorded = [r[key] for r in recorded if isinstance(r.get(key), dict)]
        if nested_served and nested_recorded:
            problems += shape_problems(
                nested_served,
                nested_recorded,
                optional=optional,
                documented=documented,
                path=f"{path}{key}.",
            )
        items_served = [i for v in values if isinstance(v, list) for i in v if isinstance(i, dict)]
        items_recorded = [
            i
            for r in recorded
            if isinstance(r.get(key), list)
            for i in r[key]
            if isinstance(i, dict)
        ]
        if items_served and items_recorded:
            problems += shape_problems(
                items_served,
                items_recorded,
                optional=optional,
                documented=documented,
                path=f"{path}{key}[].",
            )
    return problems


# Junk for property tests: what a broken or hostile payload may put in any field.
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "NaN", "inf", "-1", "1e400", "[", '["1"]', "0x12", "null", "{}"]),
    st.text(max_size=12),
    st.lists(st.text(max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def mutate(payload: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """A copy with one to four keys dropped or replaced by junk."""
    mutated = copy.deepcopy(payload)
    keys = sorted(mutated)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        key = data.draw(st.sampled_from(keys))
        if data.draw(st.booleans()):
            mutated.pop(key, None)
        else:
            mutated[key] = data.draw(JUNK)
    return mutated
