"""The simulated world: a deterministic universe of markets whose prices move second by second.

Everything follows from the scenario's seed: the universe, and for each simulated second which
markets move, by how much, and the trades that move them. The state at second ``s`` is the same
however often (or rarely) anyone looked before. Prices are held as integer thousandths ("milli")
so they stay exactly on each market's tick grid; books are derived from the quote, so REST books,
websocket deltas and the quote always agree.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from exporter.sim.scenario import AddMarkets, Close, Gap, Jump, Pairs, Scenario, ScriptedTrade

MOVE_RATE = 0.004
"""Chance per market per simulated second that it moves: about a fifth of markets move in any
given minute, the rest idle."""
JUMP_SHARE = 0.02
"""Share of moves that are jumps of 3 to 15 points rather than a tick or three."""
HISTORY_KEPT = 5000
"""Quote changes kept per market (for prices-history and candlesticks)."""
TRADES_KEPT = 500_000
"""Trades kept for the venues' trade endpoints (oldest dropped first)."""
MILLI = 1000
_MASK = (1 << 64) - 1


def mix(value: int) -> int:
    """splitmix64: a fast, well-spread 64-bit hash of an integer."""
    z = (value + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def digest(*parts: object, size: int = 32) -> bytes:
    return hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=size).digest()


def seed_of(*parts: object) -> int:
    return int.from_bytes(digest(*parts, size=8), "big")


# --- the universe -------------------------------------------------------------------------------

# Polymarket tags: (id, label, slug). The last ones map to no category on purpose.
POLYMARKET_TAGS: dict[str, list[tuple[str, str, str]]] = {
    "Politics": [("2", "Politics", "politics"), ("126", "Trump", "trump")],
    "Elections": [
        ("144", "Elections", "elections"),
        ("1597", "Global Elections", "global-elections"),
    ],
    "Sports": [("1", "Sports", "sports"), ("100639", "Soccer", "soccer"), ("745", "NBA", "nba")],
    "Crypto": [("21", "Crypto", "crypto"), ("235", "Bitcoin", "bitcoin")],
    "Economics": [("100328", "Economy", "economy"), ("702", "Fed Rates", "fed-rates")],
    "Finance": [("120", "Finance", "finance"), ("604", "Stocks", "stocks")],
    "Tech & Science": [("1401", "Tech", "tech"), ("74", "Science", "science"), ("439", "AI", "ai")],
    "Culture": [("596", "Pop Culture", "pop-culture"), ("53", "Movies", "movies")],
    "Weather & Climate": [("84", "Weather", "weather"), ("87", "Climate", "climate")],
    "World": [("101970", "World", "world"), ("100265", "Geopolitics", "geopolitics")],
}
UNMAPPED_TAGS = [
    ("101842", "Sweeden", "sweeden"),
    ("101259", "Health and Human Services", "health-and-human-services"),
    ("102127", "Mentions", "mentions"),
]
KALSHI_CATEGORIES = {
    "Politics": "POL",
    "Elections": "ELEC",
    "Economics": "ECON",
    "Financials": "FIN",
    "Crypto": "CRYPTO",
    "Climate and Weather": "WEATHER",
    "Science and Technology": "TECH",
    "Sports": "SPORT",
    "Entertainment": "ENT",
    "World": "WORLD",
    "Companies": "CO",
    "Health": "HEALTH",
}
_TOPIC_WEIGHTS = [30, 12, 25, 12, 6, 5, 4, 3, 2, 4]  # by POLYMARKET_TAGS order: a real-ish mix
_SUBJECTS = [
    "Alvarez", "Brennan", "Chen", "Duarte", "Eriksen", "Fischer", "Garcia", "Hoang", "Ivanova",
    "Jansen", "Kowalski", "Laurent", "Moreau", "Nakamura", "Okafor", "Petrov", "Quinn", "Rossi",
    "Santos", "Tanaka", "Umarov", "Varga", "Weber", "Xu", "Yilmaz", "Zimmermann",
]  # fmt: skip
_THINGS = {
    "Politics": "sign the {n} bill",
    "Elections": "win the {n} primary",
    "Sports": "win game {n}",
    "Crypto": "see BTC above ${n}k",
    "Economics": "see CPI above {n}",
    "Finance": "close above {n}",
    "Tech & Science": "ship release {n}",
    "Culture": "top the chart in week {n}",
    "Weather & Climate": "reach {n}°F",
    "World": "hold summit {n}",
}
_OPPOSITES = {
    "Politics": "veto the {n} bill",
    "Elections": "lose the {n} primary",
    "Sports": "lose game {n}",
    "Crypto": "see BTC below ${n}k",
    "Economics": "see CPI below {n}",
    "Finance": "close below {n}",
    "Tech & Science": "delay release {n}",
    "Culture": "miss the chart in week {n}",
    "Weather & Climate": "stay below {n}°F",
    "World": "cancel summit {n}",
}
"""The opposite question of each of :data:`_THINGS` (what an inverse twin asks)."""
_KALSHI_CATEGORY_OF = {
    "Politics": "Politics",
    "Elections": "Elections",
    "Sports": "Sports",
    "Crypto": "Crypto",
    "Economics": "Economics",
    "Finance": "Financials",
    "Tech & Science": "Science and Technology",
    "Culture": "Entertainment",
    "Weather & Climate": "Climate and Weather",
    "World": "World",
}


@dataclass(frozen=True, slots=True)
class _Restore:
    """The end of a scripted gap: the market's quote as before it."""

    venue: str
    key: str


@dataclass(slots=True, eq=False, kw_only=True)
class SimTrade:
    seq: int
    seconds: float
    market: SimMarket
    price_m: int
    """The traded token's price (Polymarket) or the YES price (Kalshi), in thousandths."""
    size: float
    buy: bool
    """The taker bought (the traded token on Polymarket; YES on Kalshi)."""
    trade_id: str
    token: int = 0
    """Polymarket: which outcome token traded (0 or 1)."""
    wallet: str = ""


@dataclass(slots=True, eq=False, kw_only=True)
class SimMarket:
    venue: str
    index: int
    key: str
    """Condition id (Polymarket) or ticker (Kalshi)."""
    title: str
    status: str
    """open, closed, resolved, upcoming or paused."""
    tick_m: int
    base_tick_m: int
    bid_m: int
    ask_m: int
    last_m: int | None
    depth: int
    volume: float
    volume_24h: float
    liquidity: float
    open_interest: float
    created: datetime
    end: datetime
    salt: int
    result: int | None = None
    pinned: bool = False
    leader: SimMarket | None = None
    """A twin's Polymarket market, whose price it follows (oriented) until a jump pins it."""
    inverse: bool = False
    """A twin asking the opposite question: it follows ``1 - price``."""
    history: deque[tuple[float, int, int, int | None]] = field(
        default_factory=lambda: deque(maxlen=HISTORY_KEPT)
    )
    opening: tuple[int, int, int | None] = (0, 0, None)
    """``(bid, ask, last)`` at the simulator's start: where the past ends."""
    _past: Past | MirrorPast | None = None
    trades: list[SimTrade] = field(default_factory=list)
    static: dict[str, object] = field(default_factory=dict)
    """Wire fields that never change (dates, ids), rendered once by the venue modules."""

    @property
    def trading(self) -> bool:
        return self.status == "open"

    def level_size(self, price_m: int) -> float:
        """Resting size at a price level: fixed per level, so books only change where the
        quote moved."""
        return (500 + mix(self.salt ^ price_m) % 250_000) / 100

    def yes_book(
        self, state: tuple[int, int, int] | None = None
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """``(bids best first, asks best first)`` of the YES side, now or for a given
        ``(bid, ask, tick)``; empty unless trading."""
        if not self.trading:
            return [], []
        bid, ask, tick = state or (self.bid_m, self.ask_m, self.tick_m)
        bids = [
            (p, self.level_size(p)) for p in range(bid, bid - self.depth * tick, -tick) if p >= tick
        ]
        asks = [
            (p, self.level_size(p))
            for p in range(ask, ask + self.depth * tick, tick)
            if p <= MILLI - tick
        ]
        return bids, asks

    def born(self, origin: datetime) -> float:
        """Simulated second of the market's creation (negative before the start)."""
        return (self.created - origin).total_seconds()

    def forget_past(self) -> None:
        """The opening quote changed (a scenario set it): the past ends elsewhere now."""
        self._past = None

    def past(self, origin: datetime) -> Past | MirrorPast:
        if self._past is None:
            self._past = (
                Past(self, self.born(origin))
                if self.leader is None
                else MirrorPast(self, self.leader.past(origin))
            )
        return self._past

    def quote_then(self, seconds: float, origin: datetime) -> tuple[int, int, int | None] | None:
        """``(bid, ask, last)`` in force at any simulated time, before the start included (the
        world's past, :class:`Past`); None before the market existed."""
        if seconds < self.born(origin):
            return None
        if seconds < 0:
            return self.past(origin).quote(math.floor(seconds / 60))
        return self.quote_at(seconds)

    def quote_at(self, seconds: float) -> tuple[int, int, int | None]:
        """``(bid, ask, last)`` in force at a simulated time (the first known before the start)."""
        found = self.history[0]
        for entry in self.history:
            if entry[0] > seconds:
                break
            found = entry
        return found[1], found[2], found[3]


PAST_WAVES = ((90, 700, 20), (600, 3000, 30), (2500, 12000, 40))
"""The past's slow swings: (shortest, longest period in minutes, largest amplitude in
thousandths) of each of three waves."""
PAST_JUMPS_PER_DAY = 0.3
"""Jumps of 3 to 12 points a market made per day before the start, on average."""
_MINUTES_PER_DAY = 1440


class Past:
    """A market's quotes before the simulator started, minute by minute, as a closed form of
    the minute (so any minute is computed alone, in any order, the same every time): three slow
    waves and a few jumps, ending exactly at the opening quote. The spread stays the opening
    one; the last trade is the mid."""

    __slots__ = ("ask", "bid", "jumps", "sums", "tick", "waves")

    def __init__(self, market: SimMarket, born: float) -> None:
        rng = random.Random(market.salt ^ 0x9A57)
        self.bid, self.ask, _ = market.opening
        self.tick = market.base_tick_m
        self.waves = [
            (2 * math.pi / rng.uniform(lo, hi), rng.uniform(0, 2 * math.pi), rng.uniform(0, amp))
            for lo, hi, amp in PAST_WAVES
        ]
        days = min(max(-born / 86400, 0.0), 400.0)
        count = min(rng.randint(0, max(1, round(2 * PAST_JUMPS_PER_DAY * days))), 200)
        jumps = sorted(
            (
                -rng.randint(1, max(1, round(days * _MINUTES_PER_DAY))),
                rng.choice((-1, 1)) * rng.randint(30, 120),
            )
            for _ in range(count)
        )
        self.jumps = [minute for minute, _ in jumps]
        self.sums = [0]
        for _, size in reversed(jumps):
            self.sums.append(self.sums[-1] + size)
        self.sums.reverse()
        """``sums[i]``: the jumps from the i-th on, summed (what walking back past them undoes)."""

    def _drift(self, minute: int) -> float:
        return sum(a * (math.sin(w * minute + p) - math.sin(p)) for w, p, a in self.waves)

    def quote(self, minute: int) -> tuple[int, int, int | None]:
        """The quote in force during the ``minute``-th minute (negative) of the past."""
        tick = self.tick
        undone = self.sums[bisect.bisect_right(self.jumps, minute)]
        spread = self.ask - self.bid
        moved = round((self._drift(minute) - undone) / tick) * tick
        bid = min(max(self.bid + moved, tick), MILLI - tick - spread)
        ask = bid + spread
        last = round((bid + ask) / 2 / tick) * tick
        return bid, ask, last

    def traded(self, minute: int, salt: int) -> float:
        """Contracts traded during a past minute: none in most minutes."""
        return _past_traded(minute, salt)


class MirrorPast:
    """A twin's past: its leader's quotes, oriented, on the twin's grid with its own spread."""

    __slots__ = ("inverse", "leader", "spread", "tick")

    def __init__(self, twin: SimMarket, leader: Past | MirrorPast) -> None:
        self.leader = leader
        self.inverse = twin.inverse
        self.tick = twin.base_tick_m
        self.spread = twin.opening[1] - twin.opening[0]

    def quote(self, minute: int) -> tuple[int, int, int | None]:
        bid, ask, _ = self.leader.quote(minute)
        return _centred((bid + ask) / 2, self.inverse, self.tick, self.spread)

    def traded(self, minute: int, salt: int) -> float:
        return _past_traded(minute, salt)


def _past_traded(minute: int, salt: int) -> float:
    draw = mix(salt ^ (minute & _MASK))
    return 0.0 if draw % 3 else float(1 + draw % 500)


def _centred(mid: float, inverse: bool, tick: int, spread: int) -> tuple[int, int, int]:
    """``(bid, ask, last)`` of a ``spread`` wide quote on a ``tick`` grid around ``mid`` (or
    around ``1 - mid`` when ``inverse``); the last trade mid-spread."""
    centre = MILLI - mid if inverse else mid
    bid = round((centre - spread / 2) / tick) * tick
    bid = min(max(bid, tick), MILLI - tick - spread)
    return bid, bid + spread, bid + spread // (2 * tick) * tick


@dataclass(frozen=True, slots=True)
class Twin:
    """A cross-venue pair of the world: a Kalshi market asking a Polymarket market's question
    (its first outcome's), or the opposite one when ``inverse``."""

    polymarket: PolyMarket
    kalshi: KalshiMarket
    inverse: bool


@dataclass(slots=True, eq=False, kw_only=True)
class PolyEvent:
    index: int
    event_id: str
    slug: str
    title: str
    category: str
    tags: list[tuple[str, str, str]]
    neg_risk: bool
    neg_risk_id: str
    created: datetime
    end: datetime
    number: int = 0
    """The number in the event's question (which bill, primary, game, level)."""
    dated: bool = True
    """Whether Gamma states the event's end date (``endDate`` null otherwise; a test sets it)."""
    markets: list[PolyMarket] = field(default_factory=list)

    @property
    def closed(self) -> bool:
        return all(not m.trading for m in self.markets)


@dataclass(slots=True, eq=False, kw_only=True)
class PolyMarket(SimMarket):
    gamma_id: str
    question_id: str
    slug: str
    tokens: tuple[str, str]
    outcomes: tuple[str, str]
    event: PolyEvent
    group_title: str

    @property
    def condition_id(self) -> str:
        return self.key

    def token_book(self, token: int) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """Bids and asks (best first) of one outcome token: the second token's book mirrors the
        first (a NO bid at 1 - p is a YES ask at p)."""
        bids, asks = self.yes_book()
        if token == 0:
            return bids, asks
        return [(MILLI - p, s) for p, s in asks], [(MILLI - p, s) for p, s in bids]

    def token_quote(self, token: int) -> tuple[int | None, int | None, int | None]:
        """``(best bid, best ask, last)`` of one token; None where the book side is empty."""
        bids, asks = self.token_book(token)
        last = self.last_m if token == 0 or self.last_m is None else MILLI - self.last_m
        return (bids[0][0] if bids else None, asks[0][0] if asks else None, last)


@dataclass(slots=True, eq=False, kw_only=True)
class KalshiSeries:
    ticker: str
    title: str
    category: str
    tags: list[str] | None
    frequency: str
    events: list[KalshiEvent] = field(default_factory=list)


@dataclass(slots=True, eq=False, kw_only=True)
class KalshiEvent:
    ticker: str
    series: KalshiSeries
    title: str
    sub_title: str
    mutually_exclusive: bool
    multivariate: bool
    markets: list[KalshiMarket] = field(default_factory=list)


@dataclass(slots=True, eq=False, kw_only=True)
class KalshiMarket(SimMarket):
    market_uuid: str
    event: KalshiEvent
    yes_sub_title: str
    structure: str
    kalshi_status: str
    """The venue's own status name (active, initialized, inactive, closed, determined,
    finalized)."""

    @property
    def ticker(self) -> str:
        return self.key


@dataclass(slots=True, eq=False)
class Change:
    """One market's quote moved (and perhaps traded) at a simulated time."""

    market: SimMarket
    seconds: float
    before: tuple[int, int, int]
    """``(bid, ask, tick)`` before the change."""
    after: tuple[int, int, int]
    """``(bid, ask, tick)`` right after it (a market may move again in the same batch)."""
    trades: list[SimTrade]
    status_changed: bool = False


class World:
    """The universe plus its clock-driven evolution; :meth:`advance_to` moves it forward."""

    def __init__(self, scenario: Scenario, start: datetime) -> None:
        self.scenario = scenario
        self.seed = scenario.seed
        self.start = start
        self.step = 0
        self.trades: deque[SimTrade] = deque(maxlen=TRADES_KEPT)
        self._trade_seq = 0
        self.poly_events: list[PolyEvent] = []
        self.poly_markets: list[PolyMarket] = []
        self.kalshi_series: list[KalshiSeries] = []
        self._series_by_ticker: dict[str, KalshiSeries] = {}
        self.kalshi_events: list[KalshiEvent] = []
        self.kalshi_markets: list[KalshiMarket] = []
        self.tags = [t for tags in POLYMARKET_TAGS.values() for t in tags] + UNMAPPED_TAGS
        self._salt = seed_of(self.seed, "salt")
        self._add_polymarket(scenario.universe.polymarket)
        self._add_kalshi(scenario.universe.kalshi)
        self.twins: list[Twin] = []
        self.lookalikes: list[KalshiMarket] = []
        self._add_pairs(scenario.pairs)
        self._followers: dict[str, list[KalshiMarket]] = {}
        for twin in self.twins:
            self._followers.setdefault(twin.polymarket.key, []).append(twin.kalshi)
        self.by_token: dict[str, tuple[PolyMarket, int]] = {}
        self.by_key: dict[str, SimMarket] = {}
        self._index()
        self._actions: dict[int, list[object]] = {}
        self._gapped: dict[str, tuple[int, int, int]] = {}
        """Quotes of the markets a scripted gap widened, to put back when it ends."""
        for entry in scenario.entries("jump", "close", "trade", "gap", "add_markets"):
            self._actions.setdefault(math.floor(entry.start), []).append(entry.payload)
            if entry.gap is not None and entry.for_ is not None:
                market = self.market(entry.gap.venue, entry.gap.market)
                end = math.floor(entry.end)
                self._actions.setdefault(end, []).append(_Restore(entry.gap.venue, market.key))
            if entry.jump is not None:
                market = self.market(entry.jump.venue, entry.jump.market)
                market.pinned = True
                market.status, market.result = "open", None  # a scripted market trades
                if isinstance(market, KalshiMarket):
                    market.kalshi_status = "active"
                if entry.jump.from_ is not None:
                    self._set_price(market, entry.jump.from_, 0.0, trade=False)
                    market.history.clear()
                    market.history.append((0.0, market.bid_m, market.ask_m, market.last_m))
                    market.opening = (market.bid_m, market.ask_m, market.last_m)
                    market.forget_past()
                    for follower in self._followers.get(market.key, ()):
                        self._recentre(follower)
            elif entry.close is not None:  # open until the scenario closes it
                market = self.market(entry.close.venue, entry.close.market)
                market.status, market.result = "open", None
                if isinstance(market, KalshiMarket):
                    market.kalshi_status = "active"
        self._open: dict[str, list[SimMarket]] = {}
        self._refresh_open()

    # --- lookup ---------------------------------------------------------------------------------

    def time_of(self, seconds: float) -> datetime:
        return self.start + timedelta(seconds=seconds)

    def market(self, venue: str, ref: int | str) -> SimMarket:
        """A market by index into the venue's universe, or by ticker / condition id / slug /
        token id."""
        markets: list[PolyMarket] | list[KalshiMarket] = (
            self.poly_markets if venue == "polymarket" else self.kalshi_markets
        )
        if isinstance(ref, str) and ref.startswith("twin:"):
            number = ref.removeprefix("twin:")
            if not number.isdigit() or int(number) >= len(self.twins):
                raise LookupError(f"no {ref!r}: the world has {len(self.twins)} twins")
            twin = self.twins[int(number)]
            return twin.polymarket if venue == "polymarket" else twin.kalshi
        if isinstance(ref, int):
            if not 0 <= ref < len(markets):
                raise LookupError(f"{venue} has no market number {ref} ({len(markets)} exist)")
            return markets[ref]
        found = self.by_key.get(ref)
        if found is None and ref in self.by_token:
            found = self.by_token[ref][0]
        if found is None or found.venue != venue:
            raise LookupError(f"{venue} has no market {ref!r}")
        return found

    def open_markets(self, venue: str) -> list[SimMarket]:
        return self._open[venue]

    def _index(self) -> None:
        for pm in self.poly_markets:
            self.by_key[pm.key] = pm
            self.by_key[pm.slug] = pm
            for i, token in enumerate(pm.tokens):
                self.by_token[token] = (pm, i)
        for km in self.kalshi_markets:
            self.by_key[km.key] = km

    def _refresh_open(self) -> None:
        self._open = {
            "polymarket": [m for m in self.poly_markets if m.trading],
            "kalshi": [m for m in self.kalshi_markets if m.trading],
        }

    # --- generation -----------------------------------------------------------------------------

    def _initial_quote(self, rng: random.Random, tick_choice: float) -> tuple[int, int, int, int]:
        """``(tick, bid, ask, depth)`` around a U-shaped random probability."""
        p = min(max(0.5 - 0.5 * math.cos(math.pi * rng.random()), 0.01), 0.99)  # arcsine: U
        tick = 10 if 0.05 <= p <= 0.95 and rng.random() < tick_choice else 1
        if rng.random() < 0.05:  # an illiquid market: spread wider than 0.10
            spread = tick * math.ceil(rng.randint(120, 300) / tick)
            depth = rng.randint(1, 3)
        else:
            spread = tick * rng.randint(1, 3)
            depth = rng.randint(3, 10)
        center = round(p * MILLI / tick) * tick
        bid = min(max(center - (spread // (2 * tick)) * tick, tick), MILLI - tick - spread)
        return tick, bid, bid + spread, depth

    def _volumes(self, rng: random.Random) -> tuple[float, float, float]:
        total = min(500.0 * rng.paretovariate(1.05), 5e8)
        return round(total, 6), round(total * rng.uniform(0.001, 0.05), 6), rng.uniform(50, 5e4)

    def _add_polymarket(self, count: int, at: float = 0.0) -> list[PolyMarket]:
        rng = random.Random(seed_of(self.seed, "polymarket", len(self.poly_markets), at))
        topics = list(POLYMARKET_TAGS)
        added: list[PolyMarket] = []
        while len(added) < count:
            e_index = len(self.poly_events)
            topic = rng.choices(topics, weights=_TOPIC_WEIGHTS)[0]
            tags = rng.sample(POLYMARKET_TAGS[topic], k=rng.randint(1, len(POLYMARKET_TAGS[topic])))
            if rng.random() < 0.04:
                tags = [rng.choice(UNMAPPED_TAGS)]  # nothing the category mapping knows
            elif rng.random() < 0.15:
                tags.append(rng.choice(UNMAPPED_TAGS))
            neg_risk = rng.random() < 0.15
            size = min(rng.randint(3, 8) if neg_risk else 1, count - len(added))
            now = self.time_of(at)
            created = now - timedelta(days=rng.uniform(1, 300)) if at == 0 else now
            end = now + timedelta(days=rng.uniform(2, 400))
            number = rng.randint(2, 99)
            title = f"{topic}: {_THINGS[topic].format(n=number)} by {end:%B %-d}?"
            event = PolyEvent(
                index=e_index,
                event_id=str(30000 + e_index),
                slug=f"sim-{topic.split()[0].lower()}-{e_index}",
                title=title,
                category=topic,
                tags=tags,
                neg_risk=neg_risk,
                neg_risk_id="0x" + digest(self.seed, "negrisk", e_index).hex(),
                created=created,
                end=end,
                number=number,
            )
            self.poly_events.append(event)
            for j in range(size):
                index = len(self.poly_markets)
                subject = _SUBJECTS[(e_index + j) % len(_SUBJECTS)]
                tick, bid, ask, depth = self._initial_quote(rng, 0.7)
                volume, volume_24h, liquidity = self._volumes(rng)
                status = "open"
                result = None
                if at == 0 and rng.random() < 0.05:
                    status, result = "resolved", rng.choice((0, MILLI))
                question = (
                    f"Will {subject} {_THINGS[topic].format(n=number)}?" if neg_risk else title
                )
                outcomes = ("Up", "Down") if topic == "Crypto" and not neg_risk else ("Yes", "No")
                market = PolyMarket(
                    venue="polymarket",
                    index=index,
                    key="0x" + digest(self.seed, "condition", index).hex(),
                    title=question,
                    status=status,
                    **_quote(tick, bid, ask, depth),
                    volume=volume,
                    volume_24h=volume_24h,
                    liquidity=liquidity,
                    open_interest=volume * 0.1,
                    created=created,
                    end=end,
                    salt=mix(self._salt ^ (index << 1)),
                    result=result,
                    gamma_id=str(500000 + index),
                    question_id="0x" + digest(self.seed, "question", index).hex(),
                    slug=f"sim-{subject.lower()}-{e_index}-{index}",
                    tokens=(
                        str(int.from_bytes(digest(self.seed, "token", index, 0)) % 10**77),
                        str(int.from_bytes(digest(self.seed, "token", index, 1)) % 10**77),
                    ),
                    outcomes=outcomes,
                    event=event,
                    group_title=subject if neg_risk else "",
                )
                market.history.append((at, bid, ask, market.last_m))
                market.opening = (bid, ask, market.last_m)
                event.markets.append(market)
                self.poly_markets.append(market)
                added.append(market)
        return added

    def _add_kalshi(self, count: int, at: float = 0.0) -> list[KalshiMarket]:
        rng = random.Random(seed_of(self.seed, "kalshi", len(self.kalshi_markets), at))
        categories = list(KALSHI_CATEGORIES)
        added: list[KalshiMarket] = []
        regular: KalshiSeries | None = None
        while len(added) < count:
            combo = rng.random() < 0.03  # multivariate combos: what mve_filter=exclude hides
            if combo:
                series = self._kalshi_series("KXMVECOMBO", "Sports", "Combos", rng)
            else:
                if regular is None or len(regular.events) >= rng.randint(1, 6):
                    category = rng.choice(categories)
                    code = f"KX{KALSHI_CATEGORIES[category]}{len(self.kalshi_series)}"
                    regular = self._kalshi_series(code, category, f"{category} #{code[2:]}", rng)
                series = regular
            now = self.time_of(at)
            e_index = len(self.kalshi_events)
            end = now + timedelta(days=rng.uniform(1, 200))
            if combo:
                ticker = f"KXMVECOMBO-S{digest(self.seed, 'mve', e_index, size=6).hex().upper()}"
            else:
                ticker = f"{series.ticker}-{end:%y%b%d}{e_index}".upper()
            size = min(1 if combo else rng.choice((1, 1, 2, 3, 5, 8)), count - len(added))
            event = KalshiEvent(
                ticker=ticker,
                series=series,
                title=f"{series.title}: outcome {e_index}",
                sub_title=f"On {end:%b %-d, %Y}",
                mutually_exclusive=size > 1 and rng.random() < 0.7,
                multivariate=combo,
            )
            series.events.append(event)
            self.kalshi_events.append(event)
            for j in range(size):
                index = len(self.kalshi_markets)
                tick, bid, ask, depth = self._initial_quote(rng, 0.8)
                volume = float(round(rng.paretovariate(1.1) * 100))
                draw = rng.random()
                kalshi_status, status = "active", "open"
                if at == 0:
                    for bound, name, ours in (
                        (0.02, "initialized", "upcoming"),
                        (0.03, "inactive", "paused"),
                        (0.06, "closed", "closed"),
                        (0.07, "determined", "closed"),
                        (0.10, "finalized", "resolved"),
                    ):
                        if draw < bound:
                            kalshi_status, status = name, ours
                            break
                market = KalshiMarket(
                    venue="kalshi",
                    index=index,
                    key=f"{ticker}-{'T' if j % 2 else 'B'}{10 * (j + 1) + e_index % 7}",
                    title=event.title,
                    status=status,
                    **_quote(tick, bid, ask, depth),
                    volume=volume,
                    volume_24h=float(round(volume * rng.uniform(0.0, 0.1))),
                    liquidity=0.0,
                    open_interest=float(round(volume * rng.uniform(0.1, 0.6))),
                    created=now - timedelta(days=rng.uniform(1, 100)) if at == 0 else now,
                    end=end,
                    salt=mix(self._salt ^ (index << 1 | 1)),
                    result=MILLI if status == "resolved" and rng.random() < 0.5 else None,
                    market_uuid=_uuid(mix(self._salt + 2 * index), mix(self._salt + 2 * index + 1)),
                    event=event,
                    yes_sub_title=f"Outcome {j + 1}",
                    structure="linear_cent" if tick == 10 else "deci_cent",
                    kalshi_status=kalshi_status,
                )
                if status == "resolved":
                    market.result = market.result if market.result is not None else 0
                market.history.append((at, bid, ask, market.last_m))
                market.opening = (bid, ask, market.last_m)
                event.markets.append(market)
                self.kalshi_markets.append(market)
                added.append(market)
        return added

    def _add_pairs(self, pairs: Pairs) -> None:
        """The scenario's twins and lookalikes (:class:`Pairs`), each a one-market Kalshi event
        of its own, in one shuffled sequence so that nothing but the question tells them apart."""
        leaders = [m for m in self.poly_markets if m.trading]
        if not leaders:
            return
        rng = random.Random(seed_of(self.seed, "pairs"))
        # The labelled set is unambiguous by construction: a twin's market asks a question no
        # other Polymarket market asks within a fortnight, and a lookalike asks none at all.
        asked: dict[tuple[str, str, int], list[datetime]] = {}
        for m in leaders:
            asked.setdefault(_asks(m, m.event.number), []).append(m.end)

        def unique(m: PolyMarket, number: int, end: datetime, more: int = 0) -> bool:
            close = [e for e in asked.get(_asks(m, number), ()) if abs(e - end) < _FORTNIGHT]
            return len(close) <= more

        alone = [m for m in leaders if unique(m, m.event.number, m.end, more=1)]
        plans = [(m, True) for m in rng.sample(alone, min(pairs.count, len(alone)))]
        plans += [(rng.choice(leaders), False) for _ in range(pairs.lookalikes)]
        rng.shuffle(plans)
        for leader, twin in plans:
            inverse = rng.random() < pairs.inverse_share
            number = leader.event.number
            end = leader.end + timedelta(days=rng.uniform(-1.5, 1.5))
            for _ in range(0 if twin else 50):
                if unique(leader, number, end):
                    break
                number, end = leader.event.number, leader.end
                if rng.random() < 0.6:  # another level, bill, game
                    number += rng.choice((-1, 1)) * rng.randint(1, 15)
                    number = number if number >= 2 else number + 20
                else:  # the same question, months apart
                    end = leader.end + timedelta(days=rng.uniform(45, 200))
            else:
                if not twin:
                    continue  # no question left to ask (a tiny universe)
            market = self._add_question(leader, number, max(end, self.start + timedelta(1)), rng)
            if twin:
                market.leader, market.inverse = leader, inverse
                market.ask_m = market.bid_m + market.tick_m * rng.choice((1, 1, 2))
                self._recentre(market)
                self.twins.append(Twin(leader, market, inverse))
            else:
                self.lookalikes.append(market)
            thing = (_OPPOSITES if inverse else _THINGS)[leader.event.category].format(n=number)
            subject = leader.group_title
            if subject:
                title = (
                    f"Will {subject} {thing}?" if rng.random() < 0.5 else f"{subject} to {thing}?"
                )
            else:
                title = f"{leader.event.category}: will it {thing}?"
            market.title = market.event.title = title

    def _recentre(self, twin: KalshiMarket) -> None:
        """A twin's opening quote, history and past on its leader's opening price (the
        scenario set where the leader starts)."""
        leader = twin.leader
        assert leader is not None
        mid = (leader.bid_m + leader.ask_m) / 2
        quote = _centred(mid, twin.inverse, twin.tick_m, twin.ask_m - twin.bid_m)
        twin.bid_m, twin.ask_m, twin.last_m = quote
        twin.history.clear()
        twin.history.append((0.0, *quote))
        twin.opening = quote
        twin.forget_past()

    def _add_question(
        self, leader: PolyMarket, number: int, end: datetime, rng: random.Random
    ) -> KalshiMarket:
        """A one-market Kalshi event in the category of ``leader``'s (titled by the caller)."""
        category = _KALSHI_CATEGORY_OF[leader.event.category]
        code = f"KX{KALSHI_CATEGORIES[category]}Q"
        series = self._kalshi_series(code, category, f"{category} questions", rng)
        ticker = f"{code}-{len(self.kalshi_events)}"  # no date: the same every start
        event = KalshiEvent(
            ticker=ticker, series=series, title="", sub_title=f"Before {end:%b %-d, %Y}",
            mutually_exclusive=False, multivariate=False,
        )  # fmt: skip
        series.events.append(event)
        self.kalshi_events.append(event)
        tick, bid, ask, depth = self._initial_quote(rng, 0.8)
        volume = float(round(rng.paretovariate(1.1) * 1000))
        index = len(self.kalshi_markets)
        market = KalshiMarket(
            venue="kalshi",
            index=index,
            key=f"{ticker}-N{number}",
            title="",
            status="open",
            **_quote(tick, bid, ask, depth),
            volume=volume,
            volume_24h=float(round(volume * rng.uniform(0.01, 0.1))),
            liquidity=0.0,
            open_interest=float(round(volume * rng.uniform(0.1, 0.6))),
            created=min(leader.created + timedelta(days=rng.uniform(0, 5)), self.start),
            end=end,
            salt=mix(self._salt ^ (index << 1 | 1)),
            market_uuid=_uuid(mix(self._salt + 2 * index), mix(self._salt + 2 * index + 1)),
            event=event,
            yes_sub_title=f"Before {end:%b %-d, %Y}",
            structure="linear_cent" if tick == 10 else "deci_cent",
            kalshi_status="active",
        )
        market.history.append((0.0, bid, ask, market.last_m))
        market.opening = (bid, ask, market.last_m)
        event.markets.append(market)
        self.kalshi_markets.append(market)
        return market

    def _kalshi_series(
        self, ticker: str, category: str, title: str, rng: random.Random
    ) -> KalshiSeries:
        existing = self._series_by_ticker.get(ticker)
        if existing is not None:
            return existing
        created = KalshiSeries(
            ticker=ticker,
            title=title,
            category=category,
            tags=None if rng.random() < 0.3 else [category.split()[0]],
            frequency=rng.choice(("daily", "weekly", "monthly", "one_off")),
        )
        self.kalshi_series.append(created)
        self._series_by_ticker[ticker] = created
        return created

    # --- evolution ------------------------------------------------------------------------------

    def advance_to(self, elapsed: float) -> list[Change]:
        """Play every simulated second up to ``elapsed``; the changes, oldest first."""
        changes: list[Change] = []
        target = math.floor(elapsed)
        while self.step < target:
            self.step += 1
            self._play(self.step, changes)
        return changes

    def _play(self, second: int, changes: list[Change]) -> None:
        first = len(changes)
        for action in self._actions.get(second, ()):
            self._apply(action, second, changes)
        for venue in ("polymarket", "kalshi"):
            candidates = self._open[venue]
            if not candidates:
                continue
            rng = random.Random(seed_of(self.seed, "step", venue, second))
            expected = len(candidates) * MOVE_RATE
            moves = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
            for _ in range(moves):
                market = candidates[rng.randrange(len(candidates))]
                if not market.pinned and market.leader is None:
                    self._move(market, rng, second + rng.random() * 0.999, changes)
        if self._followers:
            for change in changes[first:]:
                for twin in self._followers.get(change.market.key, ()):
                    if not twin.pinned and twin.trading:
                        self._follow(twin, change.seconds, changes)

    def _follow(self, twin: SimMarket, at: float, changes: list[Change]) -> None:
        """A twin's quote moves to its leader's price (oriented), trading there."""
        leader = twin.leader
        assert leader is not None
        spread = twin.ask_m - twin.bid_m
        bid, ask, last = _centred(
            (leader.bid_m + leader.ask_m) / 2, twin.inverse, twin.tick_m, spread
        )
        if (bid, ask) == (twin.bid_m, twin.ask_m):
            return
        before = _state(twin)
        twin.bid_m, twin.ask_m = bid, ask
        rng = random.Random(seed_of(self.seed, "follow", twin.key, at))
        trades = self._trade(twin, rng, at, last, buy=bid > before[0])
        twin.history.append((at, bid, ask, twin.last_m))
        changes.append(Change(twin, at, before, _state(twin), trades))

    def _apply(self, action: object, second: int, changes: list[Change]) -> None:
        if isinstance(action, Jump):
            market = self.market(action.venue, action.market)
            before = (market.bid_m, market.ask_m, market.tick_m)
            trades = self._set_price(market, action.to, float(second), trade=True)
            changes.append(Change(market, float(second), before, _state(market), trades))
        elif isinstance(action, ScriptedTrade):
            market = self.market(action.venue, action.market)
            before = (market.bid_m, market.ask_m, market.tick_m)
            trades = self._scripted_trade(market, action, float(second))
            changes.append(Change(market, float(second), before, _state(market), trades))
        elif isinstance(action, Gap):
            market = self.market(action.venue, action.market)
            before = (market.bid_m, market.ask_m, market.tick_m)
            self._gapped[market.key] = before
            tick, mid = market.tick_m, (market.bid_m + market.ask_m) // 2
            half = max(tick, round(action.spread * MILLI / 2 / tick) * tick)
            market.bid_m = max(tick, mid - half)
            market.ask_m = min(MILLI - tick, mid + half)
            market.history.append((float(second), market.bid_m, market.ask_m, market.last_m))
            changes.append(Change(market, float(second), before, _state(market), []))
        elif isinstance(action, _Restore):
            market = self.market(action.venue, action.key)
            before = (market.bid_m, market.ask_m, market.tick_m)
            bid, ask, _ = self._gapped.pop(market.key, before)
            tick, spread = market.tick_m, ask - bid  # the old spread, around today's price
            low = (market.bid_m + market.ask_m) // 2 - spread // 2
            market.bid_m = min(max(tick, low // tick * tick), MILLI - tick - spread)
            market.ask_m = market.bid_m + spread
            market.history.append((float(second), market.bid_m, market.ask_m, market.last_m))
            changes.append(Change(market, float(second), before, _state(market), []))
        elif isinstance(action, Close):
            market = self.market(action.venue, action.market)
            before = (market.bid_m, market.ask_m, market.tick_m)
            market.status = "closed"
            if isinstance(market, KalshiMarket):
                market.kalshi_status = "closed"
            self._refresh_open()
            changes.append(
                Change(market, float(second), before, _state(market), [], status_changed=True)
            )
        elif isinstance(action, AddMarkets):
            added: list[PolyMarket] | list[KalshiMarket] = (
                self._add_polymarket(action.count, float(second))
                if action.venue == "polymarket"
                else self._add_kalshi(action.count, float(second))
            )
            self._index()
            self._refresh_open()
            for market in added:
                state = _state(market)
                changes.append(Change(market, float(second), state, state, [], status_changed=True))

    def _set_price(
        self, market: SimMarket, price: float, at: float, *, trade: bool
    ) -> list[SimTrade]:
        """Centre the quote on ``price``: one tick either side, last trade at the price."""
        tick = market.tick_m
        center = min(max(round(price * MILLI / tick) * tick, 2 * tick), MILLI - 2 * tick)
        market.bid_m, market.ask_m = center - tick, center + tick
        market.last_m = center
        trades: list[SimTrade] = []
        if trade:
            rng = random.Random(seed_of(self.seed, "jump", market.key, at))
            trades = self._trade(market, rng, at, center, buy=True)
        market.history.append((at, market.bid_m, market.ask_m, market.last_m))
        return trades

    def _scripted_trade(
        self, market: SimMarket, action: ScriptedTrade, at: float
    ) -> list[SimTrade]:
        """One fill of the scenario's size at the last price (the YES token's on Polymarket)."""
        self._trade_seq += 1
        trade_id = (
            "0x" + digest(self.seed, "scripted", market.key, at).hex()
            if market.venue == "polymarket"
            else _uuid(mix(market.salt ^ self._trade_seq), mix(market.salt + self._trade_seq))
        )
        wallet = (action.wallet or "0x" + digest(self.seed, "whale", at, size=20).hex()).lower()
        price = market.last_m if market.last_m is not None else (market.bid_m + market.ask_m) // 2
        trade = SimTrade(
            seq=self._trade_seq, seconds=at, market=market, price_m=price,
            size=action.size, buy=action.buy, trade_id=trade_id, token=0, wallet=wallet,
        )  # fmt: skip
        market.trades.append(trade)
        self.trades.append(trade)
        notional = action.size * price / MILLI if market.venue == "polymarket" else action.size
        market.volume += notional
        market.volume_24h += notional
        return [trade]

    def _move(
        self, market: SimMarket, rng: random.Random, at: float, changes: list[Change]
    ) -> None:
        before = (market.bid_m, market.ask_m, market.tick_m)
        tick = market.tick_m
        spread = market.ask_m - market.bid_m
        up = rng.random() < (0.5 if 150 < market.bid_m < 850 else 0.5 + (500 - market.bid_m) / 2000)
        if rng.random() < JUMP_SHARE:
            delta = max(tick, rng.randint(30, 150) // tick * tick)
        else:
            delta = tick * rng.choice((1, 1, 1, 2, 3))
        if rng.random() < 0.1 and spread < 100:
            spread = max(tick, spread + tick * rng.choice((-1, 1)))
        bid = market.bid_m + (delta if up else -delta)
        bid = min(max(bid, tick), MILLI - tick - spread)
        market.bid_m, market.ask_m = bid, bid + spread
        self._retick(market)
        price = market.ask_m if up else market.bid_m
        trades = self._trade(market, rng, at, price, buy=up)
        market.history.append((at, market.bid_m, market.ask_m, market.last_m))
        changes.append(Change(market, at, before, _state(market), trades))

    def _retick(self, market: SimMarket) -> None:
        """Polymarket's grid turns to 0.001 near the edges (> 0.96 or < 0.04) and back."""
        if market.venue != "polymarket" or market.base_tick_m == 1:
            return
        edge = market.ask_m > 960 or market.bid_m < 40
        wanted = 1 if edge else market.base_tick_m
        if wanted != market.tick_m:
            market.tick_m = wanted
            if wanted > 1:  # back onto the coarse grid
                market.bid_m = max(wanted, market.bid_m // wanted * wanted)
                market.ask_m = max(market.bid_m + wanted, -(-market.ask_m // wanted) * wanted)
                market.ask_m = min(market.ask_m, MILLI - wanted)

    def _trade(
        self, market: SimMarket, rng: random.Random, at: float, yes_price: int, *, buy: bool
    ) -> list[SimTrade]:
        market.last_m = yes_price
        fills = rng.choice((1, 1, 1, 1, 2, 3)) if market.venue == "polymarket" else 1
        token = 0 if market.venue == "kalshi" or rng.random() < 0.75 else 1
        price = yes_price if token == 0 else MILLI - yes_price
        trade_id = (
            "0x" + digest(self.seed, "tx", market.key, at).hex()
            if market.venue == "polymarket"
            else _uuid(mix(market.salt ^ self._trade_seq), mix(market.salt + self._trade_seq))
        )
        made = []
        for fill in range(fills):
            size = round(max(1.0, rng.lognormvariate(3.0, 1.3)), 2)
            self._trade_seq += 1
            trade = SimTrade(
                seq=self._trade_seq,
                seconds=at,
                market=market,
                price_m=price,
                size=size,
                buy=buy if token == 0 else not buy,
                trade_id=trade_id,
                token=token,
                wallet="0x" + digest(self.seed, "wallet", rng.randrange(5000), fill, size=20).hex(),
            )
            made.append(trade)
            market.trades.append(trade)
            self.trades.append(trade)
            notional = size * price / MILLI if market.venue == "polymarket" else size
            market.volume += notional
            market.volume_24h += notional
        if len(market.trades) > 2000:
            del market.trades[:1000]
        return made


_FORTNIGHT = timedelta(days=14)


def _asks(market: PolyMarket, number: int) -> tuple[str, str, int]:
    """What a Polymarket market's question turns on: its topic, subject and number."""
    return market.event.category, market.group_title, number


def _quote(tick: int, bid: int, ask: int, depth: int) -> dict[str, Any]:
    """A new market's quote fields; the last trade starts mid-spread, on the grid."""
    return {
        "tick_m": tick,
        "base_tick_m": tick,
        "bid_m": bid,
        "ask_m": ask,
        "last_m": bid + (ask - bid) // (2 * tick) * tick,
        "depth": depth,
    }


def _state(market: SimMarket) -> tuple[int, int, int]:
    return market.bid_m, market.ask_m, market.tick_m


def _uuid(high: int, low: int) -> str:
    h = f"{high:016x}{low:016x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
