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

from exporter.config import LiquidityConfig, SignalsConfig, format_duration
from exporter.errors import StorageError
from exporter.model import Snapshot, Trade, Venue
from exporter.storage.signals import MarketEvent, OutcomeInfo, SignalStore, VolumeSpike

log = structlog.get_logger("exporter.signals")

ALERTS = {
    "whale": "WhaleTrade",
    "wallet": "WalletTrade",
    "listed": "MarketListed",
    "closed": "MarketClosed",
    "resolved": "MarketResolved",
    "liquidity": "LiquidityGap",
    "volume": "VolumeSpike",
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
    outcome_id: str | None = None
    """A liquidity gap's outcome."""
    figures: dict[str, float | None] = field(default_factory=dict)
    """A liquidity gap's bid, ask, spread and typical spread."""
    spike: VolumeSpike | None = None

    @property
    def key(self) -> str:
        """What a cooldown is kept by: the market (or the outcome until it is known)."""
        if self.info is not None:
            return self.info.market_id
        if self.event is not None:
            return self.event.market_id
        if self.spike is not None:
            return self.spike.market_id
        if self.trade is not None:
            return self.trade.outcome_id
        assert self.outcome_id is not None
        return self.outcome_id

    @property
    def unknown_outcome(self) -> str | None:
        """The outcome whose market is still to be looked up."""
        if self.info is not None:
            return None
        return self.trade.outcome_id if self.trade is not None else self.outcome_id


def notional(trade: Trade) -> float:
    """Price times size: USDC on Polymarket; on Kalshi, dollars (YES price times contracts)."""
    return trade.price * trade.size


def detect_trades(
    trades: Sequence[Trade],
    config: SignalsConfig,
    seen: OrderedDict[str, None],
    whale_for: Callable[[str], float | None] = lambda outcome: None,
) -> list[Pending]:
    """The whale and watched-wallet trades among ``trades`` not seen before (a watched wallet's
    trade is a wallet signal, whatever its size). ``whale_for``: a watched market's own whale
    threshold, by outcome (None: the venue's)."""
    found: list[Pending] = []
    whale = {Venue.POLYMARKET: config.whale.polymarket, Venue.KALSHI: config.whale.kalshi}
    wallets = config.wallets
    for trade in trades:
        label = wallets.get(trade.trader.lower()) if trade.trader and wallets else None
        limit = whale_for(trade.outcome_id) or whale[trade.venue]
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


SMOOTHING = 0.1
"""Weight of each observation in a book's typical spread."""
BOOKS_KEPT = 20_000


@dataclass(slots=True)
class _Book:
    typical: float | None = None
    tight_since: datetime | None = None
    """Since when its typical spread has been tight (a quote stands until the next: a quiet
    stream of a tight book is a tight book)."""
    gap_since: datetime | None = None
    notified: bool = False
    last: tuple[float | None, float | None] = (None, None)


class LiquidityWatch:
    """The books of hot and watched outcomes: a typical spread each (a moving average while
    no gap), and since when a normally tight one has been gapped (spread of ``spread`` and
    ``factor`` times its typical, or a side empty). A gap held ``hold`` is a signal, once,
    until the book recovers."""

    def __init__(self, config: LiquidityConfig) -> None:
        self.config = config
        self.books: dict[str, _Book] = {}

    def observe(
        self,
        rows: Sequence[Snapshot],
        watched: Callable[[str], bool],
        now: datetime | None = None,
    ) -> list[Pending]:
        """Each watched row's quote; the gaps due now. Times are this machine's clock, ``now``
        (default: each row's own time; a venue's clock, or a simulator's, may run apart)."""
        found: list[Pending] = []
        for row in rows:
            at = now or row.time
            if (row.bid is None and row.ask is None) or not watched(row.outcome_id):
                continue
            book = self.books.get(row.outcome_id)
            if book is None:
                if len(self.books) >= BOOKS_KEPT:
                    continue
                book = self.books[row.outcome_id] = _Book()
            book.last = (row.bid, row.ask)
            if self._gapped(book, row.bid, row.ask, at):
                if book.gap_since is None:
                    book.gap_since = at
                pending = self._due(row.outcome_id, book, at)
                if pending is not None:
                    found.append(pending)
                continue
            book.gap_since, book.notified = None, False
            if row.bid is None or row.ask is None:
                continue  # one side, of a book not known to be tight: nothing to learn
            spread = row.ask - row.bid
            book.typical = spread if book.typical is None else (
                book.typical + SMOOTHING * (spread - book.typical))  # fmt: skip
            if book.typical > self.config.tight:
                book.tight_since = None
            elif book.tight_since is None:
                book.tight_since = at
        return found

    def sweep(self, now: datetime) -> list[Pending]:
        """Gaps that have lasted ``hold`` without a new quote (a quiet stream)."""
        found = []
        for outcome, book in self.books.items():
            if book.gap_since is not None:
                pending = self._due(outcome, book, now)
                if pending is not None:
                    found.append(pending)
        return found

    def _gapped(self, book: _Book, bid: float | None, ask: float | None, at: datetime) -> bool:
        """A gap of a book that normally trades tight (else: no gap, and it learns)."""
        if book.gap_since is None and (
            book.tight_since is None or at - book.tight_since < self.config.learn
        ):
            return False
        if bid is None or ask is None:
            return True
        assert book.typical is not None
        return ask - bid >= max(self.config.spread, self.config.factor * book.typical)

    def _due(self, outcome: str, book: _Book, now: datetime) -> Pending | None:
        assert book.gap_since is not None
        held = (now - book.gap_since).total_seconds()
        if book.notified or held < self.config.hold.total_seconds():
            return None
        book.notified = True
        bid, ask = book.last
        figures = {"bid": bid, "ask": ask, "typical": book.typical, "held": held}
        venue = outcome.split(":", 1)[0]
        return Pending("liquidity", venue, book.gap_since, outcome_id=outcome, figures=figures)


def _money(value: float) -> str:
    return f"${value:,.0f}"


def _cents(price: float | None) -> str:
    return "?" if price is None else f"{100 * price:.1f}¢"


def _cut(text: str, size: int) -> str:
    if len(text) <= size:
        return text
    return text[: size - 1] + "…" if size > 1 else ""


def _described(detail: str, url: str) -> str:
    """The description: the detail, then the link (clickable in chat), 300 characters in all."""
    return _cut(detail, 300 - len(url)) + url


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _market_labels(pending: Pending) -> dict[str, str]:
    """Market, title, outcome, category and link, from what the signal knows of its market."""
    if pending.event is not None:
        e = pending.event
        return {"market_id": e.market_id, "title": e.title, "outcome": e.outcome or "",
                "outcome_id": e.outcome_id or "", "category": e.category,
                "url": e.url or ""}  # fmt: skip
    if pending.spike is not None:
        v = pending.spike
        return {"market_id": v.market_id, "title": v.title, "outcome": v.outcome,
                "outcome_id": v.outcome_id, "category": v.category, "url": v.url or ""}  # fmt: skip
    outcome_id = pending.trade.outcome_id if pending.trade is not None else pending.outcome_id
    assert outcome_id is not None
    info = pending.info
    if info is None:  # the database did not answer: the ids alone, rather than late
        return {"market_id": outcome_id, "title": outcome_id, "outcome": "",
                "outcome_id": outcome_id, "category": "Other", "url": ""}  # fmt: skip
    return {"market_id": info.market_id, "title": info.title, "outcome": info.outcome,
            "outcome_id": outcome_id, "category": info.category, "url": info.url or ""}  # fmt: skip


def alert_of(pending: Pending, resolve_after: timedelta, now: datetime) -> dict[str, Any]:
    """The Alertmanager alert (API v2) of a signal: labels name it (alert name, venue, market,
    title, outcome, category, link), annotations carry the numbers; it ends ``resolve_after``
    from now. Summaries fit the templates' 200 characters, descriptions their 300, the link
    last so chat apps make it clickable."""
    market = _market_labels(pending)
    labels = {
        "alertname": ALERTS[pending.signal],
        "area": "signals",
        "severity": "info",
        "signal": pending.signal,
        "venue": pending.venue,
    } | market
    url, title = market["url"], _cut(market["title"], 120)
    outcome = market["outcome"]
    annotations: dict[str, str] = {}
    starts = pending.at
    if pending.trade is not None:
        trade = pending.trade
        size = notional(trade)
        side = trade.side.value.upper() if trade.side is not None else "TRADE"
        labels["trade_id"] = trade.trade_id
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
        wallet = f", wallet {trade.trader}" if trade.trader else ""
        annotations["description"] = _described(
            f"{trade.size:,.0f} @ {_cents(trade.price)} = {_money(size)} on {pending.venue}"
            f"{wallet}. ",
            url,
        )
        annotations |= {"notional": f"{size:.2f}", "price": f"{trade.price:.4f}",
                        "size": f"{trade.size:g}", "side": side.lower()}  # fmt: skip
        if trade.trader:
            annotations["wallet"] = trade.trader
        starts = trade.time
    elif pending.spike is not None:
        spike = pending.spike
        times = spike.volume / spike.median if spike.median > 0 else None
        ratio = f"{times:.0f} times its usual" if times is not None else "none usually"
        window = format_duration(timedelta(seconds=pending.figures.get("window") or 3600))
        annotations["summary"] = _cut(
            f"Volume spike: {_money(spike.volume)} in {window} ({ratio}) · {title}", 200
        )
        annotations["description"] = _described(
            f"{spike.trades:,} trades worth {_money(spike.volume)} on {pending.venue}; the "
            f"median of the same window over the baseline is {_money(spike.median)}. ",
            url,
        )
        annotations |= {"volume": f"{spike.volume:.2f}", "median": f"{spike.median:.2f}",
                        "trades": str(spike.trades)}  # fmt: skip
    elif pending.signal == "liquidity":
        bid, ask = pending.figures.get("bid"), pending.figures.get("ask")
        typical = pending.figures.get("typical") or 0.0
        if bid is None or ask is None:
            what = "no bids" if bid is None else "no asks"
        else:
            what = f"spread {_cents(ask - bid)}"
        name = f" ({outcome})" if outcome else ""
        annotations["summary"] = _cut(
            f"Liquidity gap: {what}, usually {_cents(typical)} · {title}{name}", 200
        )
        annotations["description"] = _described(
            f"Bid {_cents(bid)} / ask {_cents(ask)} on {pending.venue}, held "
            f"{pending.figures.get('held', 0):.0f} s; the spread is usually {_cents(typical)}. ",
            url,
        )
        annotations |= {k: f"{v:.4f}" for k, v in pending.figures.items()
                        if v is not None and k in ("bid", "ask", "typical")}  # fmt: skip
    else:
        event = pending.event
        assert event is not None
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
        annotations["description"] = _described(f"{detail}. ", url)
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
    watched: Callable[[str], bool] = field(default=lambda outcome_id: False)
    """Whether an outcome is in a venue's hot set or watchlist (the books the liquidity signal
    follows); the service sets it."""
    whale_for: Callable[[str], float | None] = field(default=lambda outcome_id: None)
    """A watched market's own whale threshold, by outcome; the service sets it."""
    liquidity: LiquidityWatch = field(init=False)
    _seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _queue: asyncio.Queue[Pending] = field(default_factory=lambda: asyncio.Queue(QUEUE))
    _cooling: dict[tuple[str, str], float] = field(default_factory=dict)
    _sent: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.liquidity = LiquidityWatch(self.config.liquidity)

    def snapshots(self, rows: Sequence[Snapshot]) -> None:
        """A writer's snapshot listener: the hot and watched books' liquidity gaps."""
        if not rows or not self.config.liquidity.enabled:
            return
        for pending in self.liquidity.observe(rows, self.watched, self.clock()):
            self._enqueue(pending)

    async def volume_spikes(self) -> dict[str, int]:
        """A scheduled job: markets trading far above their usual volume."""
        config = self.config.volume
        oldest, newest = await self.store.trade_span()
        # The window ends now, or at the newest trade when a venue's clock runs ahead.
        now = max(self.clock(), newest) if newest is not None else self.clock()
        if oldest is None or now - oldest < config.min_history:
            return {"spikes": 0, "skipped": 1}  # no baseline yet
        buckets = int(min(config.baseline, now - oldest) / config.window) - 1
        spikes = await self.store.volume_spikes(
            now, config.window, max(buckets, 1), config.factor,
            {"polymarket": config.floor.polymarket, "kalshi": config.floor.kalshi},
        )  # fmt: skip
        window = config.window.total_seconds()
        for spike in spikes:
            self._enqueue(Pending("volume", spike.venue, now, spike=spike,
                                  figures={"window": window}))  # fmt: skip
        return {"spikes": len(spikes)}

    def trades(self, trades: Sequence[Trade]) -> None:
        """A writer's trade listener: queue the whale and watched-wallet trades."""
        if not trades:
            return
        for pending in detect_trades(trades, self.config, self._seen, self.whale_for):
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
        if self.config.liquidity.enabled:
            for pending in self.liquidity.sweep(now):
                found += 1
                self._enqueue(pending)
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
        unknown = {p.unknown_outcome: p for p in batch if p.unknown_outcome is not None}
        if unknown:
            try:
                found = await self.store.describe(list(unknown))
            except StorageError:
                found = {}  # posted with the ids alone rather than late
            for p in batch:
                if p.unknown_outcome is not None:
                    p.info = found.get(p.unknown_outcome)
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
        """Per-market signals (trades, liquidity, volume): one per market and signal a cooldown;
        all: the minute's budget."""
        cooled = pending.event is None
        if cooled:
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
        if cooled:
            cooldown = self.config.cooldown.total_seconds()
            if pending.signal == "volume":
                cooldown = max(cooldown, self.config.volume.window.total_seconds())
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
            "Signals detected (whale, wallet, listed, closed, resolved, liquidity, volume), by "
            "venue.",
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
        # Every signal and venue from the start (at zero), so rates and dashboards have a
        # series before the first signal: 28 series; other results appear when they happen.
        pairs = [(signal, venue.value) for signal in ALERTS for venue in Venue]
        for signal, venue in pairs:
            detected.add_metric([signal, venue], self.detected[(signal, venue)])
            if (signal, venue) in self.last_at:
                last.add_metric([signal, venue], self.last_at[(signal, venue)])
        shown = dict.fromkeys((s, v, "sent") for s, v in pairs) | dict.fromkeys(self.results)
        for key in sorted(shown):
            results.add_metric(list(key), self.results[key])
        yield detected
        yield results
        yield last
