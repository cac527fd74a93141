"""What every configuration section shares: durations ("15s" or seconds), the strict base
model."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer
from pydantic_core import PydanticCustomError

DEFAULT_CONFIG_PATH = Path("movers.yaml")

_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "y": timedelta(days=365),
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")


def parse_duration(value: object) -> timedelta:
    """Read ``90``, ``90.5`` (seconds), ``"15s"``, ``"10m"``, ``"1h30m"``, ``"14d"``, ``"2y"``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise PydanticCustomError("duration", "expected a duration such as 15s, 10m, 14d")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            return timedelta(seconds=float(text))
        if text and re.fullmatch(rf"(?:{_PART.pattern})+", text):
            total = timedelta()
            for number, unit in _PART.findall(text):
                total += float(number) * _UNITS[unit]
            return total
    raise PydanticCustomError(
        "duration", "expected a duration such as 15s, 10m, 14d, got {value}", {"value": repr(value)}
    )


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration`, using the largest unit that divides exactly."""
    micros = round(value.total_seconds() * 1_000_000)
    for unit in ("y", "d", "h", "m", "s", "ms"):
        size = round(_UNITS[unit].total_seconds() * 1_000_000)
        if micros % size == 0 and micros != 0:
            return f"{micros // size}{unit}"
    return f"{value.total_seconds()}s"


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise PydanticCustomError("duration", "must be longer than zero")
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
PositiveDuration = Annotated[Duration, AfterValidator(_positive)]


def _keyed(problems: list[tuple[str, str]]) -> PydanticCustomError:
    """An error from a section's validator naming keys relative to that section."""
    return PydanticCustomError("keyed", "; ".join(f"{p}: {why}" for p, why in problems))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
