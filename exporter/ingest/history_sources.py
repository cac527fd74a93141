"""Each venue's price history as the backfill asks for it: the fewest requests the venue's limits
allow, and their answers as price rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import msgspec

from exporter.errors import VenueRejected
from exporter.ingest.backfill import Answer, Request, Target
from exporter.ingest.common import Rejects
from exporter.model import Snapshot, Venue
from exporter.normalize.kalshi import parse_candle
from exporter.normalize.polymarket import parse_history_point
from exporter.venues.kalshi.client import CANDLE_TICKERS, CANDLES_PER_CALL, KalshiClient
from exporter.venues.polymarket.client import HISTORY_BATCH, PolymarketClient, history_windows


def _minutes(fidelity: timedelta) -> int:
    return round(fidelity.total_seconds() / 60)


class PolymarketHistory:
    """CLOB ``POST /batch-prices-history`` (20 tokens, 15-day windows); ``GET /prices-history``
    a token at a time where the batch route is not served."""

    venue = Venue.POLYMARKET

    def __init__(self, client: PolymarketClient, rejects: Rejects) -> None:
        self.client = client
        self.rejects = rejects
        self.batch = True
        """False once the venue refused the batch route (404/405): single requests then."""

    def requests(
        self, targets: Sequence[Target], start: int, end: int, fidelity: timedelta
    ) -> list[Request]:
        size = HISTORY_BATCH if self.batch else 1
        return [
            Request(tuple(targets[i : i + size]), lo, hi, fidelity)
            for lo, hi in history_windows(start, end)
            for i in range(0, len(targets), size)
        ]

    async def fetch(self, request: Request) -> Answer:
        answer = Answer()
        minutes = _minutes(request.fidelity)
        if self.batch:
            try:
                history, _ = await self.client.batch_prices_history(
                    [t.asset for t in request.targets], request.start, request.end, minutes
                )
            except VenueRejected as error:
                if error.status not in (404, 405):
                    raise
                self.batch = False
            else:
                # The batch leaves out a token it has no point for, known or not: those are
                # asked alone, where an unknown one is refused by name.
                missing = []
                for target in request.targets:
                    if history.get(target.asset):
                        answer.points[target.outcome_id] = history[target.asset]
                    else:
                        missing.append(target)
                await self._singles(request, missing, minutes, answer)
                return answer
        await self._singles(request, request.targets, minutes, answer)
        return answer

    async def _singles(
        self, request: Request, targets: Sequence[Target], minutes: int, answer: Answer
    ) -> None:
        for target in targets:
            try:
                raws, _ = await self.client.prices_history(
                    target.asset, request.start, request.end, minutes
                )
            except VenueRejected as error:
                if error.status == 400 and "invalid token" in str(error).lower():
                    answer.unknown.add(target.outcome_id)
                    continue
                raise
            answer.points[target.outcome_id] = raws

    def parse(self, raws: list[msgspec.Raw], target: Target) -> list[Snapshot]:
        return list(self.rejects.each(parse_history_point, raws, target.asset))


class KalshiHistory:
    """``GET /markets/candlesticks`` (100 tickers, 10,000 candles a call); a settled market
    the batch route leaves out, from ``/historical/markets/{ticker}/candlesticks``."""

    venue = Venue.KALSHI

    def __init__(self, client: KalshiClient, rejects: Rejects) -> None:
        self.client = client
        self.rejects = rejects

    def requests(
        self, targets: Sequence[Target], start: int, end: int, fidelity: timedelta
    ) -> list[Request]:
        width = round(fidelity.total_seconds())
        # Candles end on the period's grid, both ends included: at most this many per window.
        span = (CANDLES_PER_CALL - 1) * width
        windows = [(lo, min(lo + span, end)) for lo in range(start, end, span + width)] or [
            (start, end)
        ]
        requests = []
        for lo, hi in windows:
            per_market = (hi - lo) // width + 1
            size = max(1, min(CANDLE_TICKERS, CANDLES_PER_CALL // per_market))
            requests += [
                Request(tuple(targets[i : i + size]), lo, hi, fidelity)
                for i in range(0, len(targets), size)
            ]
        return requests

    async def fetch(self, request: Request) -> Answer:
        answer = Answer()
        period = _minutes(request.fidelity)
        page, _ = await self.client.candlesticks_batch(
            [t.asset for t in request.targets], request.start, request.end, period
        )
        served = {m.market_ticker: m.candlesticks for m in page.markets or [] if m.market_ticker}
        for target in request.targets:
            if target.asset in served:
                answer.points[target.outcome_id] = served[target.asset] or []
            elif target.trading:
                answer.unknown.add(target.outcome_id)
            else:
                await self._archived(request, target, period, answer)
        return answer

    async def _archived(
        self, request: Request, target: Target, period: int, answer: Answer
    ) -> None:
        """A settled market the live routes no longer serve: from the archive."""
        try:
            candles, _ = await self.client.candlesticks(
                "", target.asset, request.start, request.end, period, historical=True
            )
        except VenueRejected as error:
            if error.status == 404:
                answer.unknown.add(target.outcome_id)
                return
            raise
        answer.points[target.outcome_id] = candles.candlesticks or []

    def parse(self, raws: list[msgspec.Raw], target: Target) -> list[Snapshot]:
        return [s for s in self.rejects.each(parse_candle, raws, target.asset) if s is not None]
