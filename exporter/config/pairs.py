"""Cross-venue pairs: the same question on Polymarket and on Kalshi, from a YAML file of their own
(``pairs.file``), so users edit the list without touching the rest of the configuration.

    pairs:
      - polymarket: fed-decision-in-december     # a slug or a condition id
        outcome: "25 bps decrease"               # the Polymarket outcome (default Yes)
        kalshi: KXFEDDECISION-25DEC-C25           # a market ticker
        orientation: same                         # or inverse: Kalshi's YES is the other answer
        label: Fed cuts 25 bps in December
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from exporter.config.types import PositiveDuration, _keyed, _Section
from exporter.errors import ConfigError


class Pair(_Section):
    polymarket: str = Field(min_length=1)
    """The Polymarket market: its slug or condition id."""
    outcome: str = Field(default="Yes", min_length=1)
    """The Polymarket outcome compared (its name, as the market lists it)."""
    kalshi: str = Field(min_length=1)
    """The Kalshi market ticker (its YES is compared)."""
    orientation: Literal["same", "inverse"] = "same"
    """``inverse``: Kalshi's YES answers the opposite question, so its price is 1 - YES."""
    label: str | None = Field(default=None, min_length=1, max_length=120)
    """What dashboards and alerts call the pair (default: the Polymarket market's title)."""

    @property
    def pair_id(self) -> str:
        """Stable, readable and unique within a file: both markets and the outcome."""
        return f"{self.polymarket}/{self.outcome}~{self.kalshi}"


class PairsFile(_Section):
    pairs: tuple[Pair, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> PairsFile:
        seen: dict[str, int] = {}
        problems = []
        for i, pair in enumerate(self.pairs):
            if pair.pair_id in seen:
                problems.append((f"pairs.{i}", f"the same pair as pairs.{seen[pair.pair_id]}"))
            seen.setdefault(pair.pair_id, i)
        if problems:
            raise _keyed(problems)
        return self


class PairsConfig(_Section):
    file: Path | None = None
    """The pairs file (none: no pairs)."""
    every: PositiveDuration = timedelta(seconds=15)
    """How often the pairs' prices and spreads are read for ``/metrics``."""
    max_series: int = Field(default=100, ge=1, le=1000)
    """Pairs exported at most (the first in the file's order); the rest are counted."""


def load_pairs(path: Path | None) -> tuple[Pair, ...]:
    """The pairs of the file at ``path`` (none without one); a file that does not parse, or a
    key that is not a pair's, fails naming it."""
    if path is None:
        return ()
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError([("pairs.file", f"{path}: {exc.strerror}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([("(file)", f"not valid YAML: {exc}")], source) from None
    try:
        return PairsFile.model_validate(data).pairs
    except ValidationError as exc:
        from exporter.config.loading import describe_errors

        raise ConfigError(describe_errors(exc, PairsFile), source) from None
