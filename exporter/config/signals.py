"""Signals beyond price moves: whale trades, watched wallets, listings and resolutions.

Each signal the exporter detects is posted to Alertmanager's API as an alert, so routing,
grouping, inhibition, silences and templates stay in alertmanager.yml with the rules' alerts.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator
from pydantic_core import PydanticCustomError

from exporter.config.types import PositiveDuration, _Section

_WALLET = re.compile(r"0x[0-9a-f]{40}")


def _wallet(value: str) -> str:
    wallet = value.strip().lower()
    if not _WALLET.fullmatch(wallet):
        raise PydanticCustomError("wallet", "expected a wallet address such as 0x56687bf4…(40 hex)")
    return wallet


Wallet = Annotated[str, AfterValidator(_wallet)]


class WhaleConfig(_Section):
    """One trade of at least this notional (price times size) notifies; null turns a venue off."""

    polymarket: float | None = Field(default=10_000, gt=0)
    """USDC."""
    kalshi: float | None = Field(default=10_000, gt=0)
    """Dollars (the YES price times contracts)."""


class ListingsConfig(_Section):
    enabled: bool = True
    max_age: PositiveDuration = timedelta(hours=6)
    """A market new to the database is a listing when the venue created it this recently: a
    first start stores every market there is, and a restart catches up on what was listed
    meanwhile."""
    categories: tuple[str, ...] = ()
    """Only new markets of these categories notify (the exporter's category names, as in
    Grafana); empty: every category."""


class ResolutionsConfig(_Section):
    enabled: bool = True
    """A market that closed or resolved notifies, with its final price."""


class SignalsConfig(_Section):
    alertmanager_url: str | None = None
    """Where signals are posted (``/api/v2/alerts``). The image's compose sets
    ``http://alertmanager:9093``; null detects and counts signals without notifying."""
    whale: WhaleConfig = WhaleConfig()
    wallets: dict[Wallet, str] = Field(default_factory=dict)
    """Polymarket wallets to watch (address: a label): any trade of theirs notifies."""
    listings: ListingsConfig = ListingsConfig()
    resolutions: ResolutionsConfig = ResolutionsConfig()
    cooldown: PositiveDuration = timedelta(minutes=10)
    """After a market's whale or wallet notification, its next of the same signal waits this
    long (the trades between are counted, not notified)."""
    max_per_minute: int = Field(default=30, ge=1, le=10_000)
    """Notifications posted a minute at most, all signals together; more are counted as
    dropped (a first start's sweep of resolutions, a storm of whales)."""
    resolve_after: PositiveDuration = timedelta(minutes=10)
    """A signal's alert ends this long after it was sent (Alertmanager then resolves it)."""
    every: PositiveDuration = timedelta(seconds=10)
    """How often listings and status changes are read from the database's queue."""

    @field_validator("alertmanager_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"https?://[^/\s]+", value):
            raise PydanticCustomError(
                "url", "expected an http(s) URL such as http://alertmanager:9093"
            )
        return value.rstrip("/") if value is not None else None
