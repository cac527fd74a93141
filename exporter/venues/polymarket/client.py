"""Polymarket over REST: Gamma, CLOB and the Data API, one shared httpx client per host.

I/O only: each call returns the decoded payload and its receive time; parsing lives in
``exporter.normalize.polymarket``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec

from exporter.config import PolymarketConfig
from exporter.normalize.polymarket import BatchPricesHistory, GammaEventsPage, PricesHistory
from exporter.venues.http import VenueHttp, http_client

# Documented per-10 s budgets (API_NOTES 1.9); the client takes `rate_limit_share` of each.
BUDGETS = {
    "gamma_events": 500.0,
    "gamma_markets": 300.0,
    "clob_books": 500.0,
    "clob_midpoints": 500.0,
    "data_trades": 200.0,
    "clob_prices_history": 1000.0,
}
EVENTS_PAGE = 500
BOOKS_BATCH = 500
TRADES_PAGE = 500
TRADES_OFFSET_LIMIT = 10_000
HISTORY_WINDOW = 15 * 86_400
"""Seconds a ``startTs``/``endTs`` window may span: a longer one is refused with a 400."""
HISTORY_BATCH = 20
"""Tokens a ``POST /batch-prices-history`` takes."""

_EVENTS = msgspec.json.Decoder(GammaEventsPage)
_HISTORY = msgspec.json.Decoder(PricesHistory)
_BATCH_HISTORY = msgspec.json.Decoder(BatchPricesHistory)
_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])
"""A JSON array whose items the parsers decode one by one (a bad one is skipped alone)."""


class PolymarketClient:
    def __init__(
        self, config: PolymarketConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        timeout = config.timeout.total_seconds()
        self.gamma = http_client(config.gamma_url, timeout, transport)
        self.clob = http_client(config.clob_url, timeout, transport)
        self.data = http_client(config.data_url, timeout, transport)
        self.http = VenueHttp(
            "polymarket",
            BUDGETS,
            share=config.rate_limit_share,
            window=10.0,
            retry=config.retry,
            slow=config.slow_response.total_seconds(),
        )

    async def events_page(
        self,
        cursor: str | None,
        *,
        closed: bool = False,
        limit: int = EVENTS_PAGE,
        ending: tuple[datetime | None, datetime | None] = (None, None),
    ) -> tuple[GammaEventsPage, datetime]:
        """One page of ``GET /events/keyset`` (offset paging fails past 2,000), its events
        left as bytes for the parser; ``ending``: only events whose end date is within these
        bounds (both inclusive; None: unbounded)."""
        params: dict[str, Any] = {"limit": limit, "closed": str(closed).lower()}
        for name, bound in zip(("end_date_min", "end_date_max"), ending, strict=True):
            if bound is not None:
                params[name] = bound.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if cursor:
            params["after_cursor"] = cursor
        page, received = await self.http.request(
            self.gamma, "gamma_events", "GET", "/events/keyset", params=params, decoder=_EVENTS
        )
        return page, received

    async def markets_by_condition(
        self, conditions: list[str], *, closed: bool
    ) -> tuple[list[msgspec.Raw], datetime]:
        """``GET /markets?condition_ids=…`` (about 100 ids a call at most); each market left as
        bytes for the parser."""
        data, received = await self.http.request(
            self.gamma,
            "gamma_markets",
            "GET",
            "/markets",
            params={
                "condition_ids": conditions,
                "closed": str(closed).lower(),
                "limit": len(conditions),
            },
            decoder=_ITEMS,
        )
        return data, received

    async def books(self, tokens: list[str]) -> tuple[list[msgspec.Raw], datetime]:
        """``POST /books`` for at most 500 tokens; each book left as bytes for the parser."""
        data, received = await self.http.request(
            self.clob, "clob_books", "POST", "/books", body=[{"token_id": t} for t in tokens],
            decoder=_ITEMS,
        )  # fmt: skip
        return data, received

    async def trades(
        self, conditions: list[str], *, limit: int = TRADES_PAGE, offset: int = 0
    ) -> tuple[list[msgspec.Raw], datetime]:
        """``GET /trades`` for some markets, newest first; each trade left as bytes."""
        data, received = await self.http.request(
            self.data,
            "data_trades",
            "GET",
            "/trades",
            params={"market": ",".join(conditions), "limit": limit, "offset": offset},
            decoder=_ITEMS,
        )
        return data, received

    async def prices_history(
        self, token: str, start: int, end: int, fidelity: int
    ) -> tuple[list[msgspec.Raw], datetime]:
        """``GET /prices-history`` of one token from ``start`` to ``end`` (unix seconds, at most
        :data:`HISTORY_WINDOW` apart), a point every ``fidelity`` minutes; each point left as
        bytes for the parser."""
        params = {"market": token, "startTs": start, "endTs": end, "fidelity": fidelity}
        page, received = await self.http.request(
            self.clob, "clob_prices_history", "GET", "/prices-history", params=params,
            decoder=_HISTORY, spare=True,
        )  # fmt: skip
        return page.history or [], received

    async def batch_prices_history(
        self, tokens: list[str], start: int, end: int, fidelity: int
    ) -> tuple[dict[str, list[msgspec.Raw]], datetime]:
        """``POST /batch-prices-history`` for at most :data:`HISTORY_BATCH` tokens: points per
        token (a token without points may be absent)."""
        body = {"markets": tokens, "start_ts": start, "end_ts": end, "fidelity": fidelity}
        page, received = await self.http.request(
            self.clob, "clob_prices_history", "POST", "/batch-prices-history", body=body,
            decoder=_BATCH_HISTORY, spare=True,
        )  # fmt: skip
        return page.history or {}, received

    async def aclose(self) -> None:
        for client in (self.gamma, self.clob, self.data):
            await client.aclose()


def history_windows(start: int, end: int, span: int = HISTORY_WINDOW) -> list[tuple[int, int]]:
    """``start``..``end`` (unix seconds) cut into consecutive windows of at most ``span``."""
    windows = []
    while start < end:
        windows.append((start, min(start + span, end)))
        start += span
    return windows
