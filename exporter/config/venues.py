"""The venues: Polymarket and Kalshi endpoints, schedules, hot sets, retries and streams."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr

from exporter.config.types import PositiveDuration, _Section


class Watch(_Section):
    """A watched market: always hot (streamed and polled at the hot cadence), ranked and
    exported whatever the movers filters say, with thresholds of its own."""

    market: str = Field(min_length=1)
    """Polymarket: a slug or condition id; Kalshi: a market or event ticker (every market of the
    event)."""
    move_pp: dict[PositiveDuration, float] = Field(default_factory=dict)
    """MarketMoveLarge's threshold per window for this market (e.g. ``{5m: 2, 1h: 4}``),
    instead of thresholds.yml's; windows not named keep those."""
    whale: float | None = Field(default=None, gt=0)
    """A trade of at least this notional in this market is a whale (instead of
    ``signals.whale``)."""


def _watch(value: Any) -> Any:
    """A bare string is a watched market without thresholds of its own."""
    if isinstance(value, list | tuple):
        return [{"market": v} if isinstance(v, str) else v for v in value]
    return value


Watchlist = Annotated[tuple[Watch, ...], BeforeValidator(_watch)]


class RetryConfig(_Section):
    """Retries of 429s, 5xx, timeouts and broken responses: exponential backoff with jitter."""

    attempts: int = Field(default=6, ge=1, le=50)
    wait_initial: PositiveDuration = timedelta(milliseconds=500)
    wait_max: PositiveDuration = timedelta(seconds=15)
    timeout: PositiveDuration = timedelta(seconds=90)
    """Give up on a request (and fail the job run) after this long, whatever attempts remain."""


class PolymarketStreamConfig(_Section):
    """The CLOB market channel for the hot set (API_NOTES 1.7)."""

    enabled: bool = True
    size: int = Field(default=2000, ge=0, le=20_000)
    """Outcomes streamed at most: the hot set's and the watchlist's, in hot-set order."""
    per_connection: int = Field(default=200, ge=1, le=500)
    """Assets per connection; beyond ~500 the venue silently stops sending snapshots."""
    silence: PositiveDuration = timedelta(seconds=60)
    """The watchdog restarts a connection that carried no market data for this long."""
    coalesce: PositiveDuration = timedelta(seconds=1)
    """Updates of one outcome within this are written as one row (its latest)."""
    ping_every: PositiveDuration = timedelta(seconds=10)


class PolymarketTradesStreamConfig(_Section):
    """Trades from the real-time data socket (RTDS ``activity``/``trades``), beside the Data
    API job; the same trade ids, so each trade is stored once."""

    enabled: bool = False
    silence: PositiveDuration = timedelta(seconds=60)
    """The watchdog restarts the connection after this long without a trade."""
    ping_every: PositiveDuration = timedelta(seconds=5)


class _VenueSection(_Section):
    """What every venue's section has: its schedule, its hot set, its requests' patience."""

    enabled: bool = True
    discovery_every: PositiveDuration = timedelta(minutes=15)
    """Enumerate every open market and upsert the metadata (Polymarket: Gamma events, keyset
    paging; Kalshi: series, events and markets)."""
    hot_every: PositiveDuration = timedelta(seconds=15)
    """Refresh the hot set's prices (Polymarket: CLOB books; Kalshi: ``/markets?tickers=…``)."""
    trades_every: PositiveDuration = timedelta(seconds=30)
    hot_size: int = Field(default=200, ge=0, le=10_000)
    """The top N markets by 24 h volume are hot (plus the watchlist)."""
    watchlist: Watchlist = Field(default=(), max_length=200)
    """Markets that are always hot (Polymarket: slugs or condition ids; Kalshi: market or event
    tickers), each a string or ``{market, move_pp, whale}``."""

    @property
    def watched(self) -> dict[str, Watch]:
        """The watchlist by market reference."""
        return {w.market: w for w in self.watchlist}

    timeout: PositiveDuration = timedelta(seconds=20)
    retry: RetryConfig = RetryConfig()


class PolymarketConfig(_VenueSection):
    gamma_url: str = "https://gamma-api.polymarket.com"
    clob_url: str = "https://clob.polymarket.com"
    data_url: str = "https://data-api.polymarket.com"
    ws_url: str = "wss://ws-subscriptions-clob.polymarket.com/ws/market"
    rtds_url: str = "wss://ws-live-data.polymarket.com"
    tail_every: PositiveDuration = timedelta(seconds=60)
    """Refresh every other market's price from Gamma's market fields."""
    slow_response: PositiveDuration = timedelta(seconds=5)
    """Responses slower than this are counted: Polymarket throttles by delaying, not refusing."""
    rate_limit_share: float = Field(default=0.8, gt=0, le=1)
    """Share of each documented per-10 s budget the exporter allows itself."""
    stream: PolymarketStreamConfig = PolymarketStreamConfig()
    trades_stream: PolymarketTradesStreamConfig = PolymarketTradesStreamConfig()


class KalshiStreamConfig(_Section):
    """The websocket for the hot set; it needs an API key (the handshake is signed)."""

    enabled: bool = True
    size: int = Field(default=2000, ge=0, le=100_000)
    """Markets streamed at most: the hot set's and the watchlist's."""
    all_markets: bool = False
    """Subscribe every market (``ticker`` and ``trade`` without a market list) instead of the
    hot set: every open market's quote streams, and the hot REST poll rests while connected."""
    silence: PositiveDuration = timedelta(seconds=60)
    """The watchdog restarts the connection after this long without a message."""
    coalesce: PositiveDuration = timedelta(seconds=1)
    """Updates of one market within this are written as one row (its latest)."""


class KalshiConfig(_VenueSection):
    rest_url: str = "https://api.elections.kalshi.com/trade-api/v2"
    ws_url: str = "wss://api.elections.kalshi.com/trade-api/ws/v2"
    api_key_id: SecretStr | None = None
    """Optional API key id (``MOVERS_KALSHI_API_KEY_ID``); raises limits and enables streaming."""
    private_key_file: Path | None = None
    """RSA private key (PEM) for the API key (``MOVERS_KALSHI_PRIVATE_KEY_FILE``)."""
    private_key: SecretStr | None = None
    """The PEM itself; only from ``MOVERS_KALSHI_PRIVATE_KEY``, never from the file."""
    prices_every: PositiveDuration = timedelta(seconds=60)
    """Every open market's quote from ``/markets`` pages."""
    requests_per_second: float | None = Field(default=None, gt=0, le=1000)
    """One token bucket for every Kalshi read; default 3/s without an API key, 15/s with one."""
    stream: KalshiStreamConfig = KalshiStreamConfig()

    @property
    def budget(self) -> float:
        if self.requests_per_second is not None:
            return self.requests_per_second
        return 15.0 if self.api_key_id is not None else 3.0


class VenuesConfig(_Section):
    polymarket: PolymarketConfig = PolymarketConfig()
    kalshi: KalshiConfig = KalshiConfig()
