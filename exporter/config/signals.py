"""Signals beyond price moves: whale trades, watched wallets, listings and resolutions.

Each signal the exporter detects is posted to Alertmanager's API as an alert, so routing,
grouping, inhibition, silences and templates stay in alertmanager.yml with the rules' alerts.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from exporter.config.types import PositiveDuration, _keyed, _Section

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


class LiquidityConfig(_Section):
    """A hot or watched market that normally trades tight whose spread widens, or whose book
    loses a side, and stays so."""

    enabled: bool = True
    tight: float = Field(default=0.03, gt=0, le=1)
    """Normally tight: its typical spread (a moving average while no gap) is at most this."""
    spread: float = Field(default=0.10, gt=0, le=1)
    """A gap: the spread reaches this (and ``factor`` times the typical spread), or a side is
    empty."""
    factor: float = Field(default=4.0, ge=1)
    learn: PositiveDuration = timedelta(minutes=10)
    """How long a book must have been seen trading tight before a gap of it counts."""
    hold: PositiveDuration = timedelta(minutes=2)
    """How long the gap must last before it notifies."""


class VolumeConfig(_Section):
    """A market whose traded notional over ``window`` reaches ``factor`` times its median over
    the windows of the trailing ``baseline`` (hours without trades count as zero), above a
    floor."""

    enabled: bool = True
    window: PositiveDuration = timedelta(hours=1)
    baseline: PositiveDuration = timedelta(days=7)
    factor: float = Field(default=5.0, gt=1)
    floor: WhaleConfig = WhaleConfig()
    """Per venue, the window's notional from which a spike counts (USDC, dollars)."""
    min_history: PositiveDuration = timedelta(days=1)
    """No spike is judged before this much trade history is stored (a fresh install's median
    would be zero)."""
    every: PositiveDuration = timedelta(minutes=5)


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
    liquidity: LiquidityConfig = LiquidityConfig()
    volume: VolumeConfig = VolumeConfig()
    cooldown: PositiveDuration = timedelta(minutes=10)
    """After a market's whale, wallet, liquidity or volume notification, its next of the same
    signal waits this long (at least ``volume.window`` for volume spikes); what is detected
    meanwhile is counted, not notified."""
    max_per_minute: int = Field(default=30, ge=1, le=10_000)
    """Notifications posted a minute at most, all signals together; more are counted as
    dropped (a first start's sweep of resolutions, a storm of whales)."""
    resolve_after: PositiveDuration = timedelta(minutes=10)
    """A signal's alert ends this long after it was sent (Alertmanager then resolves it)."""
    every: PositiveDuration = timedelta(seconds=10)
    """How often listings and status changes are read from the database's queue."""

    @model_validator(mode="after")
    def _windows_fit(self) -> SignalsConfig:
        if self.volume.baseline < 2 * self.volume.window:
            raise _keyed([("volume.baseline", "must hold at least two volume.window")])
        return self

    @field_validator("alertmanager_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"https?://[^/\s]+", value):
            raise PydanticCustomError(
                "url", "expected an http(s) URL such as http://alertmanager:9093"
            )
        return value.rstrip("/") if value is not None else None
