"""Signals beyond price moves: whale trades, watched wallets, listings and resolutions.

Detection happens where the data passes: every trade the writer is handed (REST polls and
streams alike, before it is stored, so a database outage delays nothing), and the queue of market
events the ``markets`` triggers fill (listings and status changes, from any process). Each signal
becomes one alert posted to Alertmanager's ``/api/v2/alerts``, with labels naming the market and
annotations carrying the numbers: routing, grouping, inhibition, silences and the Discord/Slack
templates stay in alertmanager.yml, as for the rules' alerts, and the history webhook stores it.
An event is no state Prometheus could hold in a bounded gauge: posting it keeps the exporter's
series bounded and reaches the channel one ``group_wait`` after the trade, not a scrape, an
evaluation and a ``for`` later.

Volume is bounded twice: a per-market cooldown for each trade signal, and at most
``signals.max_per_minute`` alerts a minute in all; what either holds back is counted.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import stamina
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.config import SignalsConfig
from exporter.errors import StorageError
from exporter.model import Trade, Venue
from exporter.storage.signals import MarketEvent, OutcomeInfo, SignalStore

log = structlog.get_logger("exporter.signals")

ALERTS = {
    "whale": "WhaleTrade",
    "wallet": "WalletTrade",
    "listed": "MarketListed",
    "closed": "MarketClosed",
    "resolved": "MarketResolved",
}
"""Signal -> the alert name it is posted as."""
RESULTS = ("sent", "cooldown", "over_budget", "queue_full", "failed", "off")
SEEN_TRADES = 50_000
"""Trade ids remembered so a trade seen twice (poll and stream) notifies once."""
EVENTS_A_RUN = 20_000
"""Market events taken a run (a first start queues a listing for every market there is)."""
QUEUE = 1_000
BATCH = 100


@dataclass(slots=True)
class Pending:
    """A detected signal on its way to Alertmanager."""

    signal: str
    venue: str
    at: datetime
    trade: Trade | None = None
    wallet_label: str | None = None
    event: MarketEvent | None = None
    info: OutcomeInfo | None = None

    @property
    def key(self) -> str:
        """What a cooldown is kept by: the market (or the outcome until it is known)."""
        if self.info is not None:
            return self.info.market_id
        if self.event is not None:
            return self.event.market_id
        assert self.trade is not None
        return self.trade.outcome_id


def notional(trade: Trade) -> float:
    """Price times size: USDC on Polymarket; on Kalshi, dollars (YES price times contracts)."""
    return trade.price * trade.size


def detect_trades(
    trades: Sequence[Trade], config: SignalsConfig, seen: OrderedDict[str, None]
) -> list[Pending]:
    """The whale and watched-wallet trades among ``trades`` not seen before (a watched wallet's
    trade is a wallet signal, whatever its size)."""
    found: list[Pending] = []
    whale = {Venue.POLYMARKET: config.whale.polymarket, Venue.KALSHI: config.whale.kalshi}
    wallets = config.wallets
    for trade in trades:
        label = wallets.get(trade.trader.lower()) if trade.trader and wallets else None
        limit = whale[trade.venue]
        if label is None and (limit is None or notional(trade) < limit):
            continue
        key = f"{trade.venue.value}:{trade.trade_id}"
        if key in seen:
            continue
        seen[key] = None
        if len(seen) > SEEN_TRADES:
            seen.popitem(last=False)
        kind = "wallet" if label is not None else "whale"
        found.append(Pending(kind, trade.venue.value, trade.time, trade=trade, wallet_label=label))
    found.sort(key=lambda p: p.at)  # pages come newest first: the first trade is the news
    return found


def classify(event: MarketEvent, config: SignalsConfig, now: datetime) -> str | None:
    """The signal a market event is, if any: ``listed`` (new to the database, created by the
    venue within ``listings.max_age``, of a followed category), ``closed`` or ``resolved``
    (a trading market that stopped; ``closed`` then ``resolved`` notifies both)."""
    if event.kind == "listed":
        listings = config.listings
        if not listings.enabled or event.status not in ("open", "upcoming"):
            return None
        if event.listed_at is None or event.listed_at < now - listings.max_age:
            return None
        if listings.categories and event.category not in listings.categories:
            return None
        return "listed"
    if not config.resolutions.enabled or event.status not in ("closed", "resolved"):
        return None
    if event.previous not in ("open", "paused", "upcoming", "closed"):
        return None
    return event.status


def _money(value: float) -> str:
    return f"${value:,.0f}"


def _cents(price: float | None) -> str:
    return "?" if price is None else f"{100 * price:.1f}¢"


def _cut(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert_of(pending: Pending, resolve_after: timedelta, now: datetime) -> dict[str, Any]:
    """The Alertmanager alert (API v2) of a signal: labels name it (alert name, venue, market,
    title, outcome, category, link), annotations carry the numbers; it ends ``resolve_after``
    from now. Summaries fit the templates' 200 characters, descriptions their 300, the link
    last so chat apps make it clickable."""
    labels = {
        "alertname": ALERTS[pending.signal],
        "area": "signals",
        "severity": "info",
        "signal": pending.signal,
        "venue": pending.venue,
    }
    annotations: dict[str, str] = {}
    if pending.trade is not None:
        trade, info = pending.trade, pending.info
        title = info.title if info is not None else trade.outcome_id
        outcome = info.outcome if info is not None else ""
        size = notional(trade)
        side = trade.side.value.upper() if trade.side is not None else "TRADE"
        labels |= {
            "market_id": info.market_id if info is not None else trade.outcome_id,
            "title": title,
            "outcome": outcome,
            "category": info.category if info is not None else "Other",
            "url": (info.url or "") if info is not None else "",
            "outcome_id": trade.outcome_id,
            "trade_id": trade.trade_id,
        }
        who = ""
        if pending.wallet_label is not None:
            labels["wallet"] = trade.trader or ""
            who = f"{pending.wallet_label} "
        elif trade.trader:
            who = f"{trade.trader[:10]}… "
        what = f"{outcome} " if outcome else ""
        annotations["summary"] = _cut(
            f"{who}{side} {_money(size)} of {what}@ {_cents(trade.price)} · {_cut(title, 90)}", 200
        )
        annotations["description"] = (
            _cut(
                f"{trade.size:,.0f} @ {_cents(trade.price)} = {_money(size)} on {pending.venue}"
                + (f", wallet {trade.trader}" if trade.trader else "")
                + ". ",
                300 - len(labels["url"]),
            )
            + labels["url"]
        )
        annotations |= {
            "notional": f"{size:.2f}",
            "price": f"{trade.price:.4f}",
            "size": f"{trade.size:g}",
            "side": side.lower(),
        }
        if trade.trader:
            annotations["wallet"] = trade.trader
        starts = trade.time
    else:
        event = pending.event
        assert event is not None
        labels |= {
            "market_id": event.market_id,
            "title": event.title,
            "outcome": event.outcome or "",
            "outcome_id": event.outcome_id or "",
            "category": event.category,
            "url": event.url or "",
        }
        title = _cut(event.title, 120)
        if pending.signal == "listed":
            annotations["summary"] = _cut(f"New {event.category} market: {title}", 200)
            detail = f"Listed on {pending.venue}"
        else:
            verb = "Resolved" if pending.signal == "resolved" else "Closed"
            final = f" at {_cents(event.price)}" if event.price is not None else ""
            name = f" {event.outcome}" if event.outcome else ""
            annotations["summary"] = _cut(f"{verb}:{name}{final} · {title}", 200)
            detail = f"{verb} on {pending.venue} ({event.previous} → {event.status})"
            if event.price is not None:
                annotations["final_price"] = f"{event.price:.4f}"
        annotations["description"] = _cut(f"{detail}. ", 300 - len(labels["url"])) + labels["url"]
        starts = event.at
    starts = min(starts, now)
    return {
        "labels": {k: _cut(v, 300) for k, v in labels.items()},
        "annotations": annotations,
        "startsAt": _iso(starts),
        "endsAt": _iso(now + resolve_after),
    }


class PostFailed(Exception):
    """Alertmanager did not take the alerts."""


@dataclass(eq=False)
class Signals(Collector):
    """Detects signals and posts them to Alertmanager; counts every one by what became of it."""

    config: SignalsConfig
    store: SignalStore
    client: httpx.AsyncClient | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    """What "now" is for a listing's age and an alert's start and end (tests: the simulator's)."""
    detected: Counter[tuple[str, str]] = field(default_factory=Counter)
    results: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    last_at: dict[tuple[str, str], float] = field(default_factory=dict)
    _seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _queue: asyncio.Queue[Pending] = field(default_factory=lambda: asyncio.Queue(QUEUE))
    _cooling: dict[tuple[str, str], float] = field(default_factory=dict)
    _sent: deque[float] = field(default_factory=deque)

    def trades(self, trades: Sequence[Trade]) -> None:
        """A writer's trade listener: queue the whale and watched-wallet trades."""
        if not trades:
            return
        for pending in detect_trades(trades, self.config, self._seen):
            self._enqueue(pending)

    async def market_events(self) -> dict[str, int]:
        """A scheduled job: take the queued market events and queue their signals."""
        now = self.clock()
        events = await self.store.take_events(EVENTS_A_RUN)
        found = 0
        for event in events:
            signal = classify(event, self.config, now)
            if signal is not None:
                found += 1
                self._enqueue(Pending(signal, event.venue, event.at, event=event))
        return {"events": len(events), "signals": found}

    def _enqueue(self, pending: Pending) -> None:
        self.detected[(pending.signal, pending.venue)] += 1
        self.last_at[(pending.signal, pending.venue)] = time.time()
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            self.results[(pending.signal, pending.venue, "queue_full")] += 1

    async def run(self) -> None:
        """Post what is queued, a batch at a time, until cancelled."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self.deliver(batch)

    async def flush(self, force: bool = False) -> None:
        """Post what is still queued (at shutdown)."""
        batch: list[Pending] = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if batch:
            await self.deliver(batch)

    async def deliver(self, batch: list[Pending]) -> None:
        now = self.clock()
        trades = [p for p in batch if p.trade is not None and p.info is None]
        if trades:
            try:
                found = await self.store.describe([p.trade.outcome_id for p in trades if p.trade])
            except StorageError:
                found = {}  # posted with the ids alone rather than late
            for p in trades:
                assert p.trade is not None
                p.info = found.get(p.trade.outcome_id)
        chosen = [p for p in batch if self.admit(p, time.monotonic())]
        if not chosen:
            return
        if self.client is None or self.config.alertmanager_url is None:
            for p in chosen:
                self.results[(p.signal, p.venue, "off")] += 1
            return
        alerts = [alert_of(p, self.config.resolve_after, now) for p in chosen]
        try:
            await self._post(alerts)
        except (httpx.HTTPError, PostFailed) as exc:
            for p in chosen:
                self.results[(p.signal, p.venue, "failed")] += 1
            log.warning("signals not posted", alerts=len(alerts), error=f"{type(exc).__name__}")
            return
        for p in chosen:
            self.results[(p.signal, p.venue, "sent")] += 1
        log.info("signals posted", signals=dict(Counter(p.signal for p in chosen)))

    def admit(self, pending: Pending, now: float) -> bool:
        """Trade signals: one per market and signal a cooldown; all: the minute's budget."""
        if pending.trade is not None:
            key = (pending.signal, pending.key)
            until = self._cooling.get(key, 0.0)
            if until > now:
                self.results[(pending.signal, pending.venue, "cooldown")] += 1
                return False
        while self._sent and self._sent[0] <= now - 60:
            self._sent.popleft()
        if len(self._sent) >= self.config.max_per_minute:
            self.results[(pending.signal, pending.venue, "over_budget")] += 1
            return False
        self._sent.append(now)
        if pending.trade is not None:
            cooldown = self.config.cooldown.total_seconds()
            self._cooling[(pending.signal, pending.key)] = now + cooldown
            if len(self._cooling) > 10_000:
                self._cooling = {k: v for k, v in self._cooling.items() if v > now}
        return True

    async def _post(self, alerts: list[dict[str, Any]]) -> None:
        assert self.client is not None
        url = f"{self.config.alertmanager_url}/api/v2/alerts"
        async for attempt in stamina.retry_context(
            on=(httpx.TransportError, PostFailed), attempts=4, timeout=20.0, wait_initial=0.2
        ):
            with attempt:
                response = await self.client.post(url, json=alerts)
                if response.status_code >= 500:
                    raise PostFailed(f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise PostFailed(f"HTTP {response.status_code}: {response.text[:200]}")

    def collect(self) -> Iterator[Metric]:
        detected = CounterMetricFamily(
            "movers_signals_detected",
            "Signals detected (whale, wallet, listed, closed, resolved), by venue.",
            labels=["signal", "venue"],
        )
        results = CounterMetricFamily(
            "movers_signal_notifications",
            "Detected signals by what became of them: sent to Alertmanager, held by a market's "
            "cooldown, over the minute's budget, queue full, failed to post, or off (no "
            "signals.alertmanager_url).",
            labels=["signal", "venue", "result"],
        )
        last = GaugeMetricFamily(
            "movers_signal_last_detected_timestamp_seconds",
            "When a signal was last detected (unix seconds).",
            labels=["signal", "venue"],
        )
        for (signal, venue), count in sorted(self.detected.items()):
            detected.add_metric([signal, venue], count)
            last.add_metric([signal, venue], self.last_at[(signal, venue)])
        for (signal, venue, result), count in sorted(self.results.items()):
            results.add_metric([signal, venue, result], count)
        yield detected
        yield results
        yield last
