"""HTTP plumbing shared by the venue clients: one place where httpx errors become ours, one pure
function that decides what is retried, client-side rate limits, and request statistics."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import stamina
from aiolimiter import AsyncLimiter

from exporter.config import RetryConfig
from exporter.errors import RateLimited, VenueError, VenueRejected, VenueUnavailable

USER_AGENT = "prediction-movers (+https://github.com/prediction-movers)"


def is_retryable(exc: Exception) -> bool:
    """429s, 5xx, timeouts, connection failures and broken bodies are retried; other 4xx not."""
    return isinstance(exc, VenueUnavailable | RateLimited)


class VenueHttp:
    """Requests to one venue: rate-limited per endpoint family, retried, translated, counted.

    ``budgets`` maps an endpoint family to its documented requests per ``window`` seconds; the
    client allows itself ``share`` of each.
    """

    def __init__(
        self,
        venue: str,
        budgets: dict[str, float],
        *,
        share: float,
        window: float,
        retry: RetryConfig,
        slow: float,
    ) -> None:
        self.venue = venue
        self.retry = retry
        self.slow = slow
        self._limits = {
            family: AsyncLimiter(max(1.0, budget * share), window)
            for family, budget in budgets.items()
        }
        self.stats: Counter[tuple[str, str]] = Counter()
        """``(endpoint family, outcome)``: ok, rate_limited, unavailable, rejected, slow, retry."""

    async def request(
        self,
        client: httpx.AsyncClient,
        family: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: object = None,
    ) -> tuple[Any, datetime]:
        """The decoded JSON and when it arrived; raises a :class:`VenueError` after retries."""
        attempts = 0
        async for attempt in stamina.retry_context(
            on=is_retryable,
            attempts=self.retry.attempts,
            timeout=self.retry.timeout,
            wait_initial=self.retry.wait_initial,
            wait_max=self.retry.wait_max,
        ):
            with attempt:
                attempts += 1
                if attempts > 1:
                    self.stats[(family, "retry")] += 1
                return await self._once(client, family, method, path, params, body)
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    async def _once(
        self,
        client: httpx.AsyncClient,
        family: str,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body: object,
    ) -> tuple[Any, datetime]:
        limiter = self._limits.get(family)
        if limiter is not None:
            await limiter.acquire()
        started = time.monotonic()
        try:
            response = await client.request(
                method,
                path,
                params=params,
                content=None if body is None else orjson.dumps(body),
                headers=None if body is None else {"content-type": "application/json"},
            )
        except httpx.TimeoutException as exc:
            raise self._count(VenueUnavailable(self.venue, path, "timed out"), family) from exc
        except httpx.TransportError as exc:
            raise self._count(
                VenueUnavailable(self.venue, path, f"connection failed ({type(exc).__name__})"),
                family,
            ) from exc
        received_at = datetime.now(UTC)
        if time.monotonic() - started > self.slow:
            self.stats[(family, "slow")] += 1
        status = response.status_code
        if status == 429:
            raise self._count(RateLimited(self.venue, path, "429 too many requests"), family)
        if status >= 500:
            raise self._count(VenueUnavailable(self.venue, path, f"HTTP {status}"), family)
        if status >= 400:
            detail = response.text[:200]
            raise self._count(VenueRejected(self.venue, path, f"HTTP {status}: {detail}"), family)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise self._count(
                VenueUnavailable(self.venue, path, "the response is not valid JSON"), family
            ) from exc
        self.stats[(family, "ok")] += 1
        return data, received_at

    def _count(self, error: VenueError, family: str) -> VenueError:
        outcome = {
            RateLimited: "rate_limited",
            VenueUnavailable: "unavailable",
            VenueRejected: "rejected",
        }[type(error)]
        self.stats[(family, outcome)] += 1
        return error


def http_client(
    base_url: str, timeout: float, transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        headers={"user-agent": USER_AGENT, "accept": "application/json"},
        transport=transport,
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
    )
