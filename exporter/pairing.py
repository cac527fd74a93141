"""Candidate cross-venue pairs: which open Kalshi market asks the question of which open
Polymarket market (``movers pairs suggest``).

Titles are compared by :mod:`rapidfuzz` once each is reduced to its question: lower case,
dates out (the end dates are compared instead), filler words out, and each word of a known
opposite pair (``below``/``above``, ``lose``/``win``...) or a negation turned into its positive
form while its count decides the orientation (an odd count on one side only: the inverse
question). Then what a similar wording cannot tell apart rules the candidate out or costs it:

- the numbers (a level, a bill, a game) must be the same on both sides;
- names (capitalised words) must not differ entirely, and each one only one side has costs;
- end dates cost a point a day apart, and beyond three days much more (8 points, and 4 a day:
  a week apart, 24; at most 60);
- known categories that differ cost.

The best candidates are taken one to one (each market in at most one pair), best score first.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from rapidfuzz import fuzz, process

from exporter.storage.pairs import OpenMarket

MIN_SCORE = 80.0
"""The default score from which a candidate is suggested (0 to 100)."""
END_SLACK_DAYS = 3.0
"""End dates this close are the same question's (venues close a day or two apart): a point a
day apart (the closer of two otherwise equal candidates wins)."""
_END_STEP = 8.0
_END_PER_DAY = 4.0
"""Beyond the slack: :data:`_END_STEP` points, and :data:`_END_PER_DAY` more a day."""
_END_MOST = 60.0
"""The most end dates cost (from about a fortnight apart)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _end_cost(days: float) -> float:
    if days <= END_SLACK_DAYS:
        return days
    return min(_END_MOST, _END_STEP + _END_PER_DAY * (days - END_SLACK_DAYS))


_MONTHS = [
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec",
]  # fmt: skip
_DATE = re.compile(
    r"\b(?:by|before|on|in|after|until|through)?\s*(?:" + "|".join(_MONTHS) + r")\.?"
    r"(?:\s+\d{1,2}(?:st|nd|rd|th)?)?(?:,?\s+\d{4})?\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
_TOKEN = re.compile(r"[a-z0-9][a-z0-9']*")
_FILLER = frozenset((
    "will", "it", "to", "be", "the", "a", "an", "of", "by", "before", "on", "in", "at", "for",
    "this", "that", "does", "do", "is", "are", "than",
))  # fmt: skip
_OPPOSITES = {
    "below": "above", "under": "over", "lower": "higher", "less": "more", "fewer": "more",
    "lose": "win", "loses": "wins", "lost": "won", "fall": "rise", "falls": "rises",
    "decrease": "increase", "decreases": "increases", "down": "up", "reject": "approve",
    "rejects": "approves", "fail": "pass", "fails": "passes", "veto": "sign", "vetoes": "signs",
    "delay": "ship", "delays": "ships", "miss": "top", "misses": "tops", "cancel": "hold",
    "cancels": "holds", "no": "yes",
}  # fmt: skip
"""A word of an opposite pair and the word it is opposite to (the form questions are compared
in); each turns the question round once."""
_PHRASES = {
    ("stay", "below"): "reach", ("stays", "below"): "reaches", ("stay", "under"): "reach",
    ("fail", "to"): "", ("fails", "to"): "", ("less", "than"): "more",
}  # fmt: skip
"""Two words that together ask the opposite (one turn, not two): their positive form."""
_NEGATIONS = frozenset(("not", "never", "won't", "doesn't", "isn't", "didn't"))
_FUNCTION = (
    _FILLER
    | set(_MONTHS)
    | set(_OPPOSITES)
    | set(_OPPOSITES.values())
    | _NEGATIONS
    | {w for phrase in _PHRASES for w in phrase}
)


@dataclass(frozen=True, slots=True)
class Question:
    """A title reduced to what is compared."""

    text: str
    """Lower case, no dates or filler, opposites turned into their positive word."""
    flips: int
    """Opposite words and negations turned round (odd: the question asks the opposite)."""
    numbers: frozenset[str]
    names: frozenset[str]
    flipped: tuple[str, ...]
    """The words turned round (for the reason)."""


def question(title: str) -> Question:
    undated = _DATE.sub(" ", title.replace("\u2019", "'"))
    numbers = frozenset(
        n.rstrip("0").rstrip(".") if "." in n else n for n in _NUMBER.findall(undated)
    )
    names = frozenset(
        w.lower() for w in _WORD.findall(undated) if w[0].isupper() and w.lower() not in _FUNCTION
    )
    words: list[str] = []
    flipped: list[str] = []
    tokens = _TOKEN.findall(undated.lower())
    skip = False
    for raw, after in zip(tokens, [*tokens[1:], ""], strict=True):
        if skip:
            skip = False
            continue
        if (raw, after) in _PHRASES:
            flipped.append(f"{raw} {after}")
            skip = True
            if _PHRASES[raw, after]:
                words.append(_PHRASES[raw, after])
            continue
        if raw in _FILLER:
            continue
        if raw in _NEGATIONS or raw in _OPPOSITES:
            flipped.append(raw)
            if raw in _NEGATIONS:
                continue
            raw = _OPPOSITES[raw]
        words.append(raw)
    return Question(" ".join(words), len(flipped), numbers, names, tuple(flipped))


@dataclass(frozen=True, slots=True)
class Suggestion:
    polymarket: OpenMarket
    kalshi: OpenMarket
    score: float
    orientation: Literal["same", "inverse"]
    reason: str

    def entry(self) -> dict[str, str]:
        """The pair as the pairs file writes it (``exporter.config.pairs.Pair``)."""
        return {
            "polymarket": self.polymarket.slug or self.polymarket.native_id,
            "outcome": self.polymarket.outcome,
            "kalshi": self.kalshi.native_id,
            "orientation": self.orientation,
            "label": self.polymarket.title[:120],
        }


def suggest(
    markets: Iterable[OpenMarket],
    *,
    min_score: float = MIN_SCORE,
    taken: Iterable[str] = (),
) -> list[Suggestion]:
    """The candidate pairs among ``markets`` scoring ``min_score`` or more, best first, one to
    one; markets whose reference (slug, condition id or ticker) is in ``taken`` (the pairs file
    has them) are left out."""
    skip = set(taken)
    poly: list[tuple[OpenMarket, Question]] = []
    kalshi: list[tuple[OpenMarket, Question]] = []
    for market in markets:
        if market.native_id in skip or (market.slug is not None and market.slug in skip):
            continue
        side = poly if market.venue == "polymarket" else kalshi
        side.append((market, question(market.title)))
    # Kalshi's markets by end date: a Polymarket market is compared with those ending close
    # enough to score ``min_score`` at all (and with those of no known end).
    kalshi.sort(key=lambda k: (k[0].end is None, k[0].end or _EPOCH))
    dated = [k for k in kalshi if k[0].end is not None]
    ends = [k[0].end.timestamp() for k in dated if k[0].end is not None]
    undated = kalshi[len(dated) :]
    spare = 100 - min_score  # what a perfect wording may lose to its end date and still count
    reach = (
        math.inf
        if spare >= _END_MOST
        else (END_SLACK_DAYS + max(0.0, spare - _END_STEP) / _END_PER_DAY) * 86400
    )
    found: list[Suggestion] = []
    for pm, pq in poly:
        if pm.end is None:
            near = kalshi
        else:
            at = pm.end.timestamp()
            near = dated[bisect_left(ends, at - reach) : bisect_right(ends, at + reach)] + undated
        for _, similarity, i in process.extract(
            pq.text, [q.text for _, q in near], scorer=fuzz.token_sort_ratio, limit=8,
            score_cutoff=min_score, processor=None,
        ):  # fmt: skip
            km, kq = near[i]
            scored = _score(pm, pq, km, kq, similarity)
            if scored is not None and scored[0] >= min_score:
                found.append(Suggestion(pm, km, *scored))
    found.sort(key=lambda s: (-s.score, s.polymarket.native_id, s.kalshi.native_id))
    chosen: list[Suggestion] = []
    used: set[str] = set()
    for s in found:
        keys = ("polymarket:" + s.polymarket.native_id, "kalshi:" + s.kalshi.native_id)
        if used.isdisjoint(keys):
            chosen.append(s)
            used.update(keys)
    return chosen


def _score(
    pm: OpenMarket, pq: Question, km: OpenMarket, kq: Question, similarity: float
) -> tuple[float, Literal["same", "inverse"], str] | None:
    if pq.numbers != kq.numbers:
        return None
    if pq.names and kq.names and pq.names.isdisjoint(kq.names):
        return None
    score = similarity
    reasons = [f"wording {similarity:.0f}"]
    if pq.numbers:
        reasons.append("numbers " + ", ".join(sorted(pq.numbers)))
    lone = pq.names ^ kq.names
    if lone:
        score -= 10 * len(lone)
        reasons.append("names only one side has: " + ", ".join(sorted(lone)))
    if pm.end is not None and km.end is not None:
        days = abs((pm.end - km.end).total_seconds()) / 86400
        score -= _end_cost(days)
        reasons.append(f"ends {days:.0f} day{'' if round(days) == 1 else 's'} apart")
    else:
        score -= 5
        reasons.append("an end date unknown")
    if pm.category and km.category:
        if pm.category != km.category:
            score -= 15
            reasons.append(f"categories {pm.category} / {km.category}")
        else:
            reasons.append(f"both {pm.category}")
    inverse = pq.flips % 2 != kq.flips % 2
    if inverse:
        words = sorted(set(pq.flipped) ^ set(kq.flipped)) or sorted(set(pq.flipped + kq.flipped))
        reasons.append("inverse (" + ", ".join(words) + ")")
    return round(score, 1), "inverse" if inverse else "same", "; ".join(reasons)


def precision_recall(
    suggested: Sequence[tuple[str, str, str]], truth: Sequence[tuple[str, str, str]]
) -> tuple[float, float]:
    """Precision and recall of ``(polymarket, kalshi, orientation)`` triples against the true
    ones: a pair with the wrong orientation counts as wrong."""
    right = len(set(suggested) & set(truth))
    return (right / len(suggested) if suggested else 1.0, right / len(truth) if truth else 1.0)
