"""Scenario files: the universe to build and a timeline of what happens to it.

A scenario is YAML, validated like the exporter's configuration (unknown keys are errors naming
their path)::

    seed: 7
    speed: 10                      # simulated seconds per real second
    universe: {polymarket: 200, kalshi: 300}
    pairs: {count: 20, lookalikes: 20}   # Kalshi twins of Polymarket markets, and decoys
    timeline:
      - at: 30s
        jump: {venue: polymarket, market: 3, from: 0.42, to: 0.61}
      - {at: 60s, for: 20s, rate_limit: {venue: kalshi}}
      - {at: 90s, drop_websockets: {venue: all}}
      - {at: 100s, for: 45s, silence: {venue: polymarket}}
      - malformed: {venue: polymarket, endpoint: "gamma /events/keyset", page: 2}
      - {for: 10s, server_error: {venue: polymarket, endpoint: "clob /books", status: 503}}
      - truncate: {venue: kalshi, endpoint: "kalshi /markets", times: 1}

``at`` (default 0) and ``for`` (default: for ever) are simulated time. ``endpoint`` is a glob over
endpoint names such as ``"gamma /markets"``, ``"clob /book*"``, ``"kalshi /markets"`` (the list is
in the README); omitted, a fault hits every REST endpoint of the venue.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from exporter.config import Duration, describe_errors
from exporter.errors import ConfigError

VenueName = Literal["polymarket", "kalshi"]
AnyVenue = Literal["polymarket", "kalshi", "all"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Jump(_Strict):
    """The market's displayed price becomes ``to`` (a trade at ``to``, quotes one tick either
    side). With ``from`` the market starts at that price. A market named in a jump is held
    still otherwise, so what a test sees is exactly what the scenario says."""

    venue: VenueName
    market: int | str
    """An index into the venue's universe, or a Kalshi ticker / Polymarket condition id, slug
    or token id."""
    to: float = Field(gt=0, lt=1)
    from_: float | None = Field(default=None, gt=0, lt=1, alias="from")


class ScriptedTrade(_Strict):
    """One trade of ``size`` (Polymarket shares, Kalshi contracts) at the market's last price,
    by ``wallet`` when given (Polymarket publishes wallets): a whale, or a watched wallet. The
    quote does not move."""

    venue: VenueName
    market: int | str
    size: float = Field(gt=0, le=1e9)
    buy: bool = True
    wallet: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$")


class Gap(_Strict):
    """The market's book thins out: its quote widens to ``spread`` around the price, until the
    entry's ``for`` ends (then the quote is back as it was before the gap). The market keeps
    moving meanwhile, its spread kept."""

    venue: VenueName
    market: int | str
    spread: float = Field(default=0.3, gt=0, lt=1)


class Close(_Strict):
    """The market stops trading (Polymarket: ``closed``; Kalshi: status ``closed``)."""

    venue: VenueName
    market: int | str


class AddMarkets(_Strict):
    """New markets are listed (each in a new event)."""

    venue: VenueName
    count: int = Field(default=1, ge=1, le=10_000)


class Fault(_Strict):
    venue: VenueName
    endpoint: str = "*"


class ServerError(Fault):
    status: int = Field(default=503, ge=500, le=599)


class Throttle(Fault):
    """Responses are delayed (Polymarket throttles by queueing rather than refusing)."""

    delay: Duration = timedelta(seconds=2)


class Truncate(Fault):
    times: int = Field(default=1, ge=1)


class Malformed(Fault):
    """The first record on page ``page`` of a listing is corrupted (an unparsable field)."""

    page: int = Field(default=1, ge=1)


class Sockets(_Strict):
    venue: AnyVenue = "all"


class Entry(_Strict):
    at: Duration = timedelta(0)
    for_: Duration | None = Field(default=None, alias="for")
    jump: Jump | None = None
    close: Close | None = None
    trade: ScriptedTrade | None = None
    gap: Gap | None = None
    add_markets: AddMarkets | None = None
    rate_limit: Fault | None = None
    server_error: ServerError | None = None
    throttle: Throttle | None = None
    truncate: Truncate | None = None
    malformed: Malformed | None = None
    drop_websockets: Sockets | None = None
    silence: Sockets | None = None

    @property
    def action(self) -> str:
        return next(name for name in ACTIONS if getattr(self, name) is not None)

    @property
    def payload(self) -> Any:
        return getattr(self, self.action)

    @property
    def start(self) -> float:
        return self.at.total_seconds()

    @property
    def end(self) -> float:
        """When a window ends (seconds); infinite when ``for`` is not given."""
        return float("inf") if self.for_ is None else self.start + self.for_.total_seconds()

    @model_validator(mode="after")
    def _one_action(self) -> Entry:
        given = [name for name in ACTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"each timeline entry needs exactly one action of {', '.join(ACTIONS)}; "
                f"got {', '.join(given) or 'none'}"
            )
        return self


ACTIONS = (
    "jump",
    "close",
    "trade",
    "gap",
    "add_markets",
    "rate_limit",
    "server_error",
    "throttle",
    "truncate",
    "malformed",
    "drop_websockets",
    "silence",
)
WORLD_ACTIONS = ("jump", "close", "add_markets")


class Universe(_Strict):
    polymarket: int = Field(default=200, ge=0, le=200_000)
    kalshi: int = Field(default=300, ge=0, le=500_000)


class Pairs(_Strict):
    """Cross-venue pairs: Kalshi markets asking the question of a Polymarket market (its twin,
    worded the Kalshi way, ending within a day or two, priced the same and following it), and
    lookalikes that a matcher must not pair (the same subject with another number, or ending
    months apart). A twin is ``"twin:N"`` in a timeline entry (Kalshi; its Polymarket market
    under ``venue: polymarket``): a jump pins it, so it stops following and the pair diverges."""

    count: int = Field(default=0, ge=0, le=10_000)
    lookalikes: int = Field(default=0, ge=0, le=10_000)
    inverse_share: float = Field(default=0.3, ge=0, le=1)
    """Share of twins (and lookalikes) asking the opposite question (Kalshi's YES is NO)."""


class Websocket(_Strict):
    polymarket_ping_timeout: Duration = timedelta(seconds=15)
    """Real seconds a Polymarket socket may go without a ``PING`` before the server closes it."""
    kalshi_ping_interval: Duration = timedelta(seconds=10)


class Scenario(_Strict):
    seed: int = 1
    start: datetime | None = None
    """Simulated start time (aware); default: when the simulator starts."""
    speed: float = Field(default=1.0, gt=0, le=3600)
    universe: Universe = Universe()
    pairs: Pairs = Pairs()
    websocket: Websocket = Websocket()
    timeline: list[Entry] = []

    def entries(self, *actions: str) -> list[Entry]:
        return [e for e in self.timeline if e.action in actions]


def load_scenario(source: str | Path | dict[str, Any] | None = None) -> Scenario:
    """A scenario from a YAML file, a mapping, or the defaults; errors name the key."""
    if source is None:
        return Scenario()
    origin = "scenario"
    data: object = source
    if not isinstance(source, dict):
        origin = str(source)
        try:
            data = yaml.safe_load(Path(source).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError([("(file)", exc.strerror or str(exc))], origin) from None
        except yaml.YAMLError as exc:
            raise ConfigError([("(file)", f"not valid YAML: {exc}")], origin) from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, Scenario), origin) from None
