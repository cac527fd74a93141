"""Kalshi Trade API v2 over REST: one client, one token bucket for every read.

Market data needs no key. With an API key (id + RSA private key) each request is signed
(``KALSHI-ACCESS-*``: RSA-PSS-SHA256 over timestamp + method + path) and the budget rises.
I/O only: calls return decoded payloads and their receive time.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Generator
from datetime import datetime
from typing import Any, TypeVar

import httpx
import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from exporter.config import KalshiConfig
from exporter.errors import ConfigError
from exporter.normalize.kalshi import (
    Candlesticks,
    CandlesticksBatch,
    HistoricalCutoff,
    KalshiEventsPage,
    KalshiMarketsPage,
    KalshiSeriesList,
    KalshiTradesPage,
)
from exporter.venues.http import VenueHttp, http_client

MARKETS_PAGE = 1000
EVENTS_PAGE = 200
TRADES_PAGE = 1000
TICKERS_PER_CALL = 100
CANDLE_TICKERS = 100
"""Tickers a ``GET /markets/candlesticks`` takes."""
CANDLES_PER_CALL = 10_000
"""Candles one call returns at most (tickers x periods)."""


class KalshiSigner(httpx.Auth):
    """Signs each request with the API key; the private key never leaves this object."""

    def __init__(self, key_id: str, private_key: rsa.RSAPrivateKey) -> None:
        self._key_id = key_id
        self._key = private_key

    def headers(self, method: str, path: str) -> dict[str, str]:
        """The ``KALSHI-ACCESS-*`` headers for one request (or websocket handshake) now."""
        stamp = str(int(time.time() * 1000))
        signature = self._key.sign(
            f"{stamp}{method}{path}".encode(),
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
            hashes.SHA256(),
        )
        return {
            "KALSHI-ACCESS-KEY": self._key_id,
            "KALSHI-ACCESS-TIMESTAMP": stamp,
            "KALSHI-ACCESS-SIGNATURE": base64.b64encode(signature).decode(),
        }

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.headers(request.method, request.url.path))
        yield request


def load_signer(config: KalshiConfig) -> KalshiSigner | None:
    """The signer for the configured API key, or None without one; a key id without a usable
    private key is a configuration error (naming the key, never showing it)."""
    if config.api_key_id is None:
        return None
    if config.private_key is not None:
        pem = config.private_key.get_secret_value().encode()
    elif config.private_key_file is not None:
        try:
            pem = config.private_key_file.read_bytes()
        except OSError as exc:
            raise ConfigError(
                [("venues.kalshi.private_key_file", f"cannot read: {exc.strerror}")]
            ) from None
    else:
        raise ConfigError(
            [("venues.kalshi.private_key_file", "api_key_id is set but no private key is")]
        )
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError([("venues.kalshi.private_key", "not a PEM private key")]) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError([("venues.kalshi.private_key", "not an RSA private key")])
    return KalshiSigner(config.api_key_id.get_secret_value(), key)


_MARKETS = msgspec.json.Decoder(KalshiMarketsPage)
_TRADES = msgspec.json.Decoder(KalshiTradesPage)
_SERIES = msgspec.json.Decoder(KalshiSeriesList)
_EVENTS = msgspec.json.Decoder(KalshiEventsPage)
_CANDLES = msgspec.json.Decoder(Candlesticks)
_CANDLES_BATCH = msgspec.json.Decoder(CandlesticksBatch)
_CUTOFF = msgspec.json.Decoder(HistoricalCutoff)
T = TypeVar("T")


class KalshiClient:
    def __init__(
        self, config: KalshiConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.rest = http_client(config.rest_url, config.timeout.total_seconds(), transport)
        signer = load_signer(config)
        self.signer = signer
        """Signs the websocket handshake too; None without an API key (then no streaming)."""
        if signer is not None:
            self.rest.auth = signer
        self.budget = config.budget
        # One bucket for every read (API_NOTES 2.7): `budget` requests a second, no burst beyond.
        self.http = VenueHttp(
            "kalshi",
            {"reads": config.budget},
            share=1.0,
            window=1.0,
            retry=config.retry,
            slow=config.timeout.total_seconds() / 2,
        )

    async def _get(
        self,
        path: str,
        params: dict[str, Any],
        decoder: msgspec.json.Decoder[T],
        *,
        family: str | None = None,
        spare: bool = False,
    ) -> tuple[T, datetime]:
        """A read: one rate-limit bucket for every read; statistics by endpoint (series,
        events, ...: the path, unless ``family`` names it); the body decoded straight into the
        page's struct. History reads are ``spare``: they take what live reads leave."""
        family = family or path.strip("/").replace("/", "_")
        page, received = await self.http.request(
            self.rest, family, "GET", path, params=params, bucket="reads", decoder=decoder,
            spare=spare,
        )  # fmt: skip
        return page, received

    async def series(self) -> tuple[list[msgspec.Raw], datetime]:
        """``GET /series``: not paginated; each series left as bytes for the parser."""
        page, received = await self._get("/series", {}, _SERIES)
        return page.series or [], received

    async def events_page(
        self, cursor: str, *, status: str = "open"
    ) -> tuple[KalshiEventsPage, datetime]:
        params: dict[str, Any] = {"limit": EVENTS_PAGE, "status": status}
        if cursor:
            params["cursor"] = cursor
        return await self._get("/events", params, _EVENTS)

    async def markets_page(
        self,
        cursor: str,
        *,
        status: str | None = "open",
        tickers: list[str] | None = None,
        closing: tuple[int | None, int | None] = (None, None),
    ) -> tuple[KalshiMarketsPage, datetime]:
        """``GET /markets``; combos are excluded (a page can otherwise be all empty combos).
        ``closing``: close-time bounds in unix seconds (``min_close_ts``, ``max_close_ts``).
        Each market is left as bytes for the parser."""
        params: dict[str, Any] = {"limit": MARKETS_PAGE, "mve_filter": "exclude"}
        if status:
            params["status"] = status
        if tickers:
            params["tickers"] = ",".join(tickers)
        if closing[0] is not None:
            params["min_close_ts"] = closing[0]
        if closing[1] is not None:
            params["max_close_ts"] = closing[1]
        if cursor:
            params["cursor"] = cursor
        return await self._get("/markets", params, _MARKETS)

    async def trades_page(
        self, cursor: str, *, min_ts: int | None
    ) -> tuple[KalshiTradesPage, datetime]:
        """The global tape, newest first, from ``min_ts`` (unix seconds) on; each trade left as
        bytes for the parser."""
        params: dict[str, Any] = {"limit": TRADES_PAGE}
        if min_ts is not None:
            params["min_ts"] = min_ts
        if cursor:
            params["cursor"] = cursor
        return await self._get("/markets/trades", params, _TRADES)

    async def candlesticks_batch(
        self, tickers: list[str], start: int, end: int, period: int
    ) -> tuple[CandlesticksBatch, datetime]:
        """``GET /markets/candlesticks`` for at most :data:`CANDLE_TICKERS` markets from
        ``start`` to ``end`` (unix seconds), candles of ``period`` minutes (1, 60 or 1440); at
        most :data:`CANDLES_PER_CALL` candles in all."""
        params = {"market_tickers": ",".join(tickers), "start_ts": start, "end_ts": end,
                  "period_interval": period}  # fmt: skip
        return await self._get("/markets/candlesticks", params, _CANDLES_BATCH, spare=True)

    async def candlesticks(
        self, series: str, ticker: str, start: int, end: int, period: int, *, historical: bool
    ) -> tuple[Candlesticks, datetime]:
        """One market's candles: ``/series/{series}/markets/{ticker}/candlesticks``, or for a
        market settled before the historical cutoff ``/historical/markets/{ticker}/…``."""
        path = (
            f"/historical/markets/{ticker}/candlesticks"
            if historical
            else f"/series/{series}/markets/{ticker}/candlesticks"
        )
        params = {"start_ts": start, "end_ts": end, "period_interval": period}
        return await self._get(path, params, _CANDLES, family="candlesticks", spare=True)

    async def historical_cutoff(self) -> tuple[HistoricalCutoff, datetime]:
        """``GET /historical/cutoff``: before it, settled markets live under ``/historical``."""
        return await self._get("/historical/cutoff", {}, _CUTOFF, spare=True)

    async def aclose(self) -> None:
        await self.rest.aclose()
