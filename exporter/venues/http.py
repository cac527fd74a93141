"""HTTP plumbing shared by the venue clients: one place where httpx errors become ours, one pure
function that decides what is retried, client-side rate limits, and request statistics."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import orjson
import stamina
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.config import RetryConfig
from exporter.errors import RateLimited, VenueError, VenueRejected, VenueUnavailable
from exporter.timing import REQUEST_BUCKETS, histogram, merged
from exporter.venues.limits import SlidingWindow

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
        # Whole requests: 0.8 of Polymarket's 500 per 10 s is 400 in any 10 s, never a burst more.
        self._limits = {
            family: SlidingWindow(max(1, int(budget * share)), window)
            for family, budget in budgets.items()
        }
        self.stats: Counter[tuple[str, str]] = Counter()
        """Responses by ``(endpoint family, status)``: 2xx, 4xx, 429, 5xx, timeout,
        connection_error, invalid_body."""
        self.events: Counter[tuple[str, str]] = Counter()
        """``(endpoint family, event)``: retry, give_up (failed after retries), slow."""
        self.durations = histogram(
            "movers_venue_request_duration_seconds",
            "Venue request latency per attempt, by endpoint family.",
            ["venue", "endpoint"],
            REQUEST_BUCKETS,
        )
        """Seconds per attempt by endpoint family, whatever its outcome."""

    def lift_limits(self) -> None:
        """Send without the client-side rate limits (benchmarks against the simulator)."""
        self._limits.clear()

    async def request(
        self,
        client: httpx.AsyncClient,
        family: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: object = None,
        bucket: str | None = None,
        shape: type[list[Any]] | type[dict[str, Any]] | None = None,
        decoder: msgspec.json.Decoder[Any] | None = None,
        spare: bool = False,
    ) -> tuple[Any, datetime]:
        """The decoded JSON and when it arrived; raises a :class:`VenueError` after retries.

        ``family`` labels the statistics; ``bucket`` names the rate limit it draws from when
        several families share one (default: the family's own). A body that is not of
        ``shape``, or that ``decoder`` (a page's typed envelope, decoded straight from the
        bytes) refuses, counts and is retried like one that is not JSON. A ``spare`` request
        (the history backfill) takes only the rate budget live ones leave."""
        attempts = 0
        try:
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
                        self.events[(family, "retry")] += 1
                    return await self._once(
                        client, family, bucket or family, method, path, params, body, shape,
                        decoder, spare,
                    )  # fmt: skip
        except VenueError:
            self.events[(family, "give_up")] += 1
            raise
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    async def _once(
        self,
        client: httpx.AsyncClient,
        family: str,
        bucket: str,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body: object,
        shape: type[list[Any]] | type[dict[str, Any]] | None = None,
        decoder: msgspec.json.Decoder[Any] | None = None,
        spare: bool = False,
    ) -> tuple[Any, datetime]:
        limiter = self._limits.get(bucket)
        if limiter is not None:
            await limiter.acquire(spare=spare)
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
            self._count(family, "timeout", started)
            raise VenueUnavailable(self.venue, path, "timed out") from exc
        except httpx.TransportError as exc:
            self._count(family, "connection_error", started)
            raise VenueUnavailable(
                self.venue, path, f"connection failed ({type(exc).__name__})"
            ) from exc
        received_at = datetime.now(UTC)
        if time.monotonic() - started > self.slow:
            self.events[(family, "slow")] += 1
        status = response.status_code
        if status == 429:
            self._count(family, "429", started)
            raise RateLimited(self.venue, path, "429 too many requests")
        if status >= 500:
            self._count(family, "5xx", started)
            raise VenueUnavailable(self.venue, path, f"HTTP {status}")
        if status >= 400:
            self._count(family, "4xx", started)
            raise VenueRejected(
                self.venue, path, f"HTTP {status}: {response.text[:200]}", status=status
            )
        if decoder is not None:
            try:
                page = decoder.decode(response.content)
            except msgspec.DecodeError as exc:  # ValidationError included
                self._count(family, "invalid_body", started)
                raise VenueUnavailable(
                    self.venue, path, f"unexpected response: {str(exc)[:200]}"
                ) from exc
            self._count(family, "2xx", started)
            return page, received_at
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            self._count(family, "invalid_body", started)
            raise VenueUnavailable(self.venue, path, "the response is not valid JSON") from exc
        if shape is not None and not isinstance(data, shape):
            # Taken as an empty success, a wrong shape would hide an outage; count and retry it.
            self._count(family, "invalid_body", started)
            raise VenueUnavailable(
                self.venue, path, f"expected a JSON {shape.__name__}, got {type(data).__name__}"
            )
        self._count(family, "2xx", started)
        return data, received_at

    def _count(self, family: str, status: str, started: float) -> None:
        self.stats[(family, status)] += 1
        self.durations.labels(self.venue, family).observe(time.monotonic() - started)


class HttpCollector(Collector):
    """The venue clients' request outcomes, retries and latency."""

    def __init__(self, clients: Sequence[VenueHttp]) -> None:
        self.clients = clients

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "movers_venue_requests",
            "Venue responses by endpoint family and status: 2xx, 4xx, 429, 5xx, timeout, "
            "connection_error, invalid_body (each attempt, retries included).",
            labels=["venue", "endpoint", "status"],
        )
        events = {
            event: CounterMetricFamily(f"movers_venue_{name}", doc, labels=["venue", "endpoint"])
            for event, name, doc in (
                ("retry", "retries", "Venue requests sent again after a retryable failure."),
                ("give_up", "give_ups", "Venue requests that failed after their retries."),
                ("slow", "slow_responses", "Venue responses slower than slow_response."),
            )
        }
        for http in self.clients:
            for (family, status), count in sorted(http.stats.items()):
                requests.add_metric([http.venue, family, status], count)
            for (family, event), count in sorted(http.events.items()):
                events[event].add_metric([http.venue, family], count)
        yield requests
        yield from events.values()
        yield from merged(http.durations for http in self.clients)


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
