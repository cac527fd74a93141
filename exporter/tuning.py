"""``movers tune``'s model: what MarketMoveLarge would have sent over stored history.

One definition: nothing here restates a threshold or a timer. They are read from the files
Prometheus and Alertmanager load (the rules folder and ``alertmanager.yml``): each window's
``movers:alert_threshold_move_pp`` from ``thresholds.yml``, the rule's ``for`` and
``keep_firing_for`` from its own file, and the route, grouping and timers an alert with the rule's
labels takes through Alertmanager's tree. The exporter's side (windows, staleness, filters, the
export's floor, the watchlists' own thresholds) comes from the exporter's settings.

The replay follows each stage with the semantics of the real one:

* **exporter**: a market's move over a window at instant ``t`` is ``100 * (price at t - price at
  t - window)``, each the last stored row at or before, used only within ``movers.staleness``;
  the same outcomes rank (the filters: 24 h volume, spread at ``t``; resolving markets left out);
* **Prometheus**: the rule's condition (``|move| ≥`` the watched market's own threshold, else the
  window's, and at least ``movers.export.min_abs_move_pp`` unless watched), held ``for``, kept
  firing ``keep_firing_for`` after it clears;
* **Alertmanager**: per route, alerts grouped by the route's ``group_by``; a group is flushed
  ``group_wait`` after it forms, then every ``group_interval``; a flush notifies when a firing
  alert was not in the last notification, or when ``repeat_interval`` passed since it; a group
  whose alerts all resolved is gone, and the next alert forms a new one.

What it cannot know is listed in :data:`BOUNDARIES` (and in the README).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.config import Settings, SignalsConfig, TuneConfig, parse_duration, window_label
from exporter.errors import ConfigError
from exporter.storage.database import Database
from exporter.storage.signals import SignalStore, VolumeSpike
from exporter.storage.tuning import (
    Eligibility,
    MoveBounds,
    OutcomeInfo,
    Span,
    TradeRow,
    category_sizes,
    hourly,
    latest_refresh,
    move_spans,
    notable_trades,
    outcome_info,
    outcome_rows,
    stored_extent,
    watched_markets,
)

ALERT = "MarketMoveLarge"
THRESHOLD_RECORD = "movers:alert_threshold_move_pp"
HISTORY_PATH = "/alerts/webhook"
"""The exporter's alert-history webhook: a receiver whose only integration posts here sends no
messages to anyone."""

BOUNDARIES = (
    "Each market's 24 h volume (the volume filter, and the score the export's cap ranks by) is "
    "today's, not the one at the time.",
    "Prices are replayed as stored; a row written seconds after its time (a busy database) "
    "was not yet there for the refresh at that time.",
    "The refreshes are replayed every movers.every from the last one stored; across a restart "
    "of the exporter their instants shift, so a move shorter than a refresh may be caught or "
    "missed.",
    "Inhibitions (IngestStale, DatabaseDown) and silences are not replayed: when a venue "
    "stalled, fewer alerts were sent.",
    "Alertmanager's timers run from when a group forms; the scrape and the evaluation add up to "
    "half a minute, so a window crossing within a group_interval of another may land in the "
    "same message or the next.",
)


class NoHistory(ConfigError):
    """Nothing is stored in the time asked about."""


def _problem(where: str, why: str) -> ConfigError:
    return ConfigError([(where, why)], "alerting files")


def _duration(value: Any, where: str) -> float:
    if value is None:
        return 0.0
    try:
        return parse_duration(str(value)).total_seconds()
    except ValueError as exc:
        raise _problem(where, f"{value!r} is not a duration ({exc})") from None


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise _problem(str(path), "no such file") from None
    except (OSError, yaml.YAMLError) as exc:
        raise _problem(str(path), f"does not parse: {exc}") from None


# -- the alerting files ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Matcher:
    label: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.label, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        found = re.fullmatch(self.value, have) is not None
        return found if self.op == "=~" else not found


_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


def parse_matcher(text: str, where: str) -> Matcher:
    found = _MATCHER.fullmatch(text)
    if found is None:
        raise _problem(where, f"cannot read the matcher {text!r}")
    label, op, value = found.groups()
    return Matcher(label, op, value.replace('\\"', '"'))


@dataclass(frozen=True, slots=True)
class Route:
    """A route of Alertmanager's tree with what it inherits from its parents."""

    path: str
    receiver: str
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...] | None
    """None: ``['...']``, every label."""
    group_wait: float
    group_interval: float
    repeat_interval: float
    continues: bool
    children: tuple[Route, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


def _route(node: Mapping[str, Any], parent: Route | None, path: str) -> Route:
    matchers = [parse_matcher(m, f"{path}.matchers") for m in node.get("matchers") or []]
    matchers += [Matcher(k, "=", str(v)) for k, v in (node.get("match") or {}).items()]
    matchers += [Matcher(k, "=~", str(v)) for k, v in (node.get("match_re") or {}).items()]
    group_by: tuple[str, ...] | None
    if "group_by" in node:
        names = tuple(str(n) for n in node["group_by"] or ())
        group_by = None if "..." in names else names
    else:
        group_by = parent.group_by if parent else ()

    def timer(key: str, default: float) -> float:
        if key in node:
            return _duration(node[key], f"{path}.{key}")
        return getattr(parent, key) if parent else default

    route = Route(
        path=path,
        receiver=str(node.get("receiver") or (parent.receiver if parent else "")),
        matchers=tuple(matchers),
        group_by=group_by,
        group_wait=timer("group_wait", 30.0),
        group_interval=timer("group_interval", 300.0),
        repeat_interval=timer("repeat_interval", 4 * 3600.0),
        continues=bool(node.get("continue", False)),
    )
    children = tuple(
        _route(child, route, f"{path}.routes[{i}]")
        for i, child in enumerate(node.get("routes") or [])
    )
    return dataclasses.replace(route, children=children)


def routes_for(root: Route, labels: Mapping[str, str]) -> list[Route]:
    """The routes an alert with ``labels`` is sent along, as Alertmanager walks its tree: the
    deepest matching route of each branch, siblings after one only while it ``continue``\\ s."""
    found: list[Route] = []
    for child in root.children:
        if not child.matches(labels):
            continue
        found += routes_for(child, labels) or [child]
        if not child.continues:
            break
    return found


@dataclass(frozen=True, slots=True)
class Alerting:
    """What the alerting files say about MarketMoveLarge."""

    thresholds: dict[str, float]
    """pp per window label; a window without one never alerts."""
    for_seconds: float
    keep_firing_seconds: float
    rule_labels: dict[str, str]
    root: Route
    chat_receivers: frozenset[str]
    """Receivers that message someone (not only the exporter's alert history)."""
    sources: tuple[str, ...]
    surge: Surge | None = None
    """CategorySurge as the files define it (None: no such rule)."""

    def routes(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes of an alert that reach a chat (Discord, Slack, …)."""
        return [r for r in routes_for(self.root, labels) if r.receiver in self.chat_receivers]


@dataclass(frozen=True, slots=True)
class Surge:
    """What the files say about CategorySurge: per window, the moved markets of a category that
    fire it, and the share of the category's ranked markets they must be; its timers."""

    counts: dict[str, float]
    share: float
    for_seconds: float
    keep_firing_seconds: float
    rule_labels: dict[str, str]


SURGE = "CategorySurge"
SURGE_COUNT_RECORD = "movers:alert_threshold_category_moved_markets"
SURGE_SHARE_RECORD = "movers:alert_threshold_category_moved_share"

_VECTOR = re.compile(r"\s*vector\(\s*([0-9.eE+-]+)\s*\)\s*")


def read_alerting(rules: Path, alertmanager: Path) -> Alerting:
    """Read the thresholds, the rule and the routes from the files Prometheus and Alertmanager
    load; a file that does not parse, or lacks what the rule needs, fails naming it."""
    if not rules.is_dir():
        raise _problem(str(rules), "no such folder (the alert rules: alertmanager/rules)")
    thresholds: dict[str, float] = {}
    rule: dict[str, Any] | None = None
    surge_rule: dict[str, Any] | None = None
    counts: dict[str, float] = {}
    share = 0.0
    sources: list[str] = []
    for path in sorted(rules.glob("*.yml")) + sorted(rules.glob("*.yaml")):
        data = _load_yaml(path)
        sources.append(str(path))
        for g, group in enumerate((data or {}).get("groups") or []):
            for r, item in enumerate(group.get("rules") or []):
                where = f"{path}: groups[{g}].rules[{r}]"
                if item.get("record") == THRESHOLD_RECORD:
                    window = (item.get("labels") or {}).get("window")
                    found = _VECTOR.fullmatch(str(item.get("expr", "")))
                    if window is None or found is None:
                        raise _problem(
                            where, f"{THRESHOLD_RECORD} must be `vector(<pp>)` with a window label"
                        )
                    thresholds[str(window)] = float(found.group(1))
                if item.get("alert") == ALERT:
                    rule = dict(item, _where=where)
                if item.get("alert") == SURGE:
                    surge_rule = dict(item, _where=where)
                if item.get("record") in (SURGE_COUNT_RECORD, SURGE_SHARE_RECORD):
                    found = _VECTOR.fullmatch(str(item.get("expr", "")))
                    if found is None:
                        raise _problem(where, f"{item['record']} must be `vector(<number>)`")
                    window = (item.get("labels") or {}).get("window")
                    if item["record"] == SURGE_SHARE_RECORD:
                        share = float(found.group(1))
                    elif window is None:
                        raise _problem(where, f"{SURGE_COUNT_RECORD} needs a window label")
                    else:
                        counts[str(window)] = float(found.group(1))
    if rule is None:
        raise _problem(str(rules), f"no rule alerts {ALERT}")
    if not thresholds:
        raise _problem(str(rules), f"no {THRESHOLD_RECORD} threshold")
    config = _load_yaml(alertmanager)
    if not isinstance(config, dict) or not isinstance(config.get("route"), dict):
        raise _problem(str(alertmanager), "has no route")
    sources.append(str(alertmanager))
    root = _route(config["route"], None, "route")
    chat = set()
    for receiver in config.get("receivers") or []:
        integrations = {k: v for k, v in receiver.items() if k.endswith("_configs") and v}
        only_history = set(integrations) == {"webhook_configs"} and all(
            str(hook.get("url", "")).endswith(HISTORY_PATH)
            for hook in integrations["webhook_configs"]
        )
        if integrations and not only_history:
            chat.add(str(receiver.get("name")))
    return Alerting(
        thresholds=thresholds,
        for_seconds=_duration(rule.get("for"), f"{rule['_where']}.for"),
        keep_firing_seconds=_duration(
            rule.get("keep_firing_for"), f"{rule['_where']}.keep_firing_for"
        ),
        rule_labels={str(k): str(v) for k, v in (rule.get("labels") or {}).items()},
        root=root,
        chat_receivers=frozenset(chat),
        sources=tuple(sources),
        surge=None
        if surge_rule is None
        else Surge(
            counts=counts,
            share=share,
            for_seconds=_duration(surge_rule.get("for"), f"{surge_rule['_where']}.for"),
            keep_firing_seconds=_duration(
                surge_rule.get("keep_firing_for"), f"{surge_rule['_where']}.keep_firing_for"
            ),
            rule_labels={str(k): str(v) for k, v in (surge_rule.get("labels") or {}).items()},
        ),
    )


CHECKOUT_RULES = Path("alertmanager/rules")
CHECKOUT_ALERTMANAGER = Path("alertmanager/alertmanager.yml")
"""Where the files are in a checkout of the project."""


def alerting_files(config: TuneConfig) -> tuple[Path, Path]:
    """The rules folder and alertmanager.yml: ``tune``'s settings (where compose mounts them);
    when those are the defaults and not there, a checkout's (run from the project's folder)."""
    rules, manager = config.rules, config.alertmanager
    if not rules.is_dir() and "rules" not in config.model_fields_set:
        rules = CHECKOUT_RULES
    if not manager.is_file() and "alertmanager" not in config.model_fields_set:
        manager = CHECKOUT_ALERTMANAGER
    return rules, manager


# -- the exporter's moves --------------------------------------------------------------------


Row = tuple[float, float, float | None]
"""A stored price: unix time, price, spread (ask - bid; None when a side is empty)."""


def move_segments(
    rows: Sequence[Row],
    *,
    width: float,
    lo: float,
    hi: float,
    staleness: float,
    floor: float,
    max_spread: float | None,
) -> list[tuple[float, float, float]]:
    """``(start, end, move_pp)`` where the window's move was at least ``floor`` pp either way in
    ``[lo, hi)``, as the refresh computes it at each instant: the price now (the last row at or
    before it, at most ``staleness`` old) less the price a window before (the same, at most
    ``staleness`` before the window's start), while the spread now passes ``max_spread``. The
    move only changes at a row's time, a window after one, or when a row goes stale."""
    if not rows:
        return []
    times = [r[0] for r in rows]
    cuts = {lo}
    # Only a row from a window and the staleness before ``lo`` up to ``hi`` can cut the span.
    first = bisect.bisect_right(times, lo - width - staleness)
    for t in times[first : bisect.bisect_left(times, hi)]:
        for cut in (t, t + width, t + staleness, t + width + staleness):
            if lo < cut < hi:
                cuts.add(cut)
    found: list[tuple[float, float, float]] = []
    ordered = sorted(cuts)
    for k, at in enumerate(ordered):
        end = ordered[k + 1] if k + 1 < len(ordered) else hi
        i = bisect.bisect_right(times, at) - 1
        j = bisect.bisect_right(times, at - width) - 1
        if i < 0 or j < 0 or times[i] <= at - staleness or times[j] <= at - width - staleness:
            continue
        spread = rows[i][2]
        if max_spread is not None and (spread is None or spread > max_spread + 1e-9):
            continue
        move = round(100 * (rows[i][1] - rows[j][1]), 6)
        if abs(move) < floor - 1e-9:
            continue
        if found and found[-1][1] == at and found[-1][2] == move:
            found[-1] = (found[-1][0], end, move)
        else:
            found.append((at, end, move))
    return found


def without(
    segments: list[tuple[float, float, float]], start: float, end: float
) -> list[tuple[float, float, float]]:
    """``segments`` less the instants in ``[start, end)``."""
    kept: list[tuple[float, float, float]] = []
    for s, e, move in segments:
        if e <= start or s >= end:
            kept.append((s, e, move))
            continue
        if s < start:
            kept.append((s, start, move))
        if e > end:
            kept.append((end, e, move))
    return kept


def above(
    segments: Iterable[tuple[float, float, float]], threshold: float
) -> list[tuple[float, float]]:
    """The merged stretches where ``|move| ≥ threshold``."""
    merged: list[tuple[float, float]] = []
    for start, end, move in sorted(segments):
        if abs(move) < threshold - 1e-9:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def sampled(
    conditions: Sequence[tuple[float, float]], every: float, phase: float
) -> list[tuple[float, float]]:
    """What the rule sees of ``conditions``: the refresh computes the moves at instants ``phase
    + k * every`` and its gauges hold until the next, so a stretch counts from the first instant
    in it to the instant after its last (one that holds no instant is never seen)."""
    if every <= 0:
        return list(conditions)
    seen: list[tuple[float, float]] = []
    for start, end in conditions:
        first = phase + math.ceil((start - phase) / every - 1e-9) * every
        if first >= end:
            continue
        last = phase + (math.ceil((end - phase) / every - 1e-9) - 1) * every
        if seen and first <= seen[-1][1]:
            seen[-1] = (seen[-1][0], max(seen[-1][1], last + every))
        else:
            seen.append((first, last + every))
    return seen


def episodes(
    conditions: Sequence[tuple[float, float]], for_seconds: float, keep_seconds: float
) -> list[tuple[float, float]]:
    """When Prometheus has the alert firing, ``(fired, resolved)``: the condition held for
    ``for`` (it fires then), and it resolves ``keep_firing_for`` after the condition last held;
    a condition back within that time continues the same alert."""
    fired: list[tuple[float, float]] = []
    for start, end in conditions:
        if end - start < for_seconds:
            if fired and start < fired[-1][1]:  # within keep_firing_for: still the same alert
                fired[-1] = (fired[-1][0], max(fired[-1][1], end + keep_seconds))
            continue
        begin = start + for_seconds
        if fired and begin <= fired[-1][1]:
            fired[-1] = (fired[-1][0], max(fired[-1][1], end + keep_seconds))
        else:
            fired.append((begin, end + keep_seconds))
    return fired


# -- Alertmanager ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Firing:
    """One alert's firing stretch: its identity, the group it falls in and when."""

    key: str
    group: tuple[str, tuple[str, ...]]
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Sent:
    """A notification: when, to which route's group, and the alerts new in it."""

    at: float
    route: str
    group: tuple[str, ...]
    new: tuple[str, ...]
    firing: tuple[str, ...]


def notifications(firings: Iterable[Firing], routes: Mapping[str, Route]) -> list[Sent]:
    """Every notification Alertmanager sends for these alerts (see the module's description)."""
    by_group: dict[tuple[str, tuple[str, ...]], list[Firing]] = defaultdict(list)
    for f in firings:
        by_group[f.group].append(f)
    sent: list[Sent] = []
    for (path, group), alerts in by_group.items():
        sent += _group_notifications(path, group, alerts, routes[path])
    sent.sort(key=lambda s: s.at)
    return sent


def _group_notifications(
    path: str, group: tuple[str, ...], alerts: list[Firing], route: Route
) -> Iterator[Sent]:
    alerts.sort(key=lambda a: a.start)
    pending = 0
    while pending < len(alerts):
        # A group forms with its first alert, waits group_wait, then is flushed every
        # group_interval until a flush finds every alert of it resolved: it is gone, and the
        # next alert forms a new group.
        flush = alerts[pending].start + route.group_wait
        present: list[Firing] = []
        notified: set[str] | None = None
        last = float("-inf")
        while True:
            while pending < len(alerts) and alerts[pending].start <= flush:
                present.append(alerts[pending])
                pending += 1
            firing = {a.key for a in present if a.start <= flush < a.end}
            if not firing:
                notified = None
            elif notified is None or not firing <= notified:
                new = tuple(sorted(firing - (notified or set())))
                yield Sent(flush, path, group, new, tuple(sorted(firing)))
                notified, last = firing, flush
            elif flush - last >= route.repeat_interval:
                yield Sent(flush, path, group, (), tuple(sorted(firing)))
                notified, last = firing, flush
            present = [a for a in present if a.end > flush]
            if not present:
                break
            # Skip the flushes where nothing can change: no alert joins or ends, no repeat due.
            coming = alerts[pending].start if pending < len(alerts) else math.inf
            ending = min(a.end for a in present)
            while True:
                after = flush + route.group_interval
                if coming <= after or after >= ending or after - last >= route.repeat_interval:
                    break
                flush = after
            flush += route.group_interval


def _routed(
    alerting: Alerting,
    labels: Mapping[str, str],
    key: str,
    stretches: Iterable[tuple[float, float]],
    firings: list[Firing],
    routes: dict[str, Route],
) -> None:
    """An alert's firing stretches, in the group each chat route it takes puts it in."""
    spans = list(stretches)
    for route in alerting.routes(labels):
        routes[route.path] = route
        names = sorted(labels) if route.group_by is None else route.group_by
        group = (route.path, tuple(labels.get(n, "") for n in names))
        firings += [Firing(key, group, start, end) for start, end in spans]


Piece = tuple[float, float, str, float]
"""A stretch of one outcome's move over a window: start, end, outcome id, move in pp."""


def exported(
    pieces: Sequence[Piece],
    *,
    weights: Mapping[str, float],
    watched: frozenset[str],
    limit: int,
    min_abs: float,
) -> list[Piece]:
    """The parts of ``pieces`` (one window's) the exporter exports: a watched outcome's always;
    of the others, while their move is at least ``min_abs``, the ``limit`` best by score (|move|
    times the outcome's weight) at each instant, as the refresh ranks and ``/metrics`` cuts."""
    kept: list[Piece] = [p for p in pieces if p[2] in watched]
    ranked = [p for p in pieces if p[2] not in watched and abs(p[3]) >= min_abs - 1e-9]
    if not ranked:
        return kept
    cuts = sorted({t for p in ranked for t in (p[0], p[1])})

    # The refresh's ranking order (movers_ranked.sql): best score, then largest |move|, then id.
    def key(i: int) -> tuple[float, float, str]:
        _, _, outcome, move = ranked[i]
        return -abs(move) * weights.get(outcome, 1.0), -abs(move), outcome

    order = sorted(range(len(ranked)), key=key)
    rank = [0] * len(ranked)
    for position, i in enumerate(order):
        rank[i] = position
    starts: dict[float, list[int]] = defaultdict(list)
    ends: dict[float, list[int]] = defaultdict(list)
    for i, p in enumerate(ranked):
        if p[1] > p[0]:
            starts[p[0]].append(rank[i])
            ends[p[1]].append(rank[i])
    active: list[int] = []  # the ranks of the pieces present, best first
    open_since: dict[int, float] = {}
    for k, at in enumerate(cuts[:-1]):
        for r in ends.get(at, ()):
            del active[bisect.bisect_left(active, r)]
        for r in starts.get(at, ()):
            bisect.insort(active, r)
        top = {order[r] for r in active[:limit]}
        for i in list(open_since):
            if i not in top:
                kept.append((open_since.pop(i), at, ranked[i][2], ranked[i][3]))
        for i in top:
            open_since.setdefault(i, at)
        next_at = cuts[k + 1]
        for i in list(open_since):
            if ranked[i][1] <= next_at:
                kept.append((open_since.pop(i), ranked[i][1], ranked[i][2], ranked[i][3]))
    return kept


def cap_bars(
    pieces: Sequence[Piece],
    *,
    weights: Mapping[str, float],
    watched: frozenset[str],
    limit: int,
    min_abs: float,
    since: float,
    until: float,
) -> dict[float, float]:
    """Per hour (its start, unix seconds), the score a move must reach at some instant of the
    hour to take an exported place from one of ``pieces`` (the moves that could alert): the
    ``limit``-th best of the pieces present all hour long when there are that many, else the
    lowest of them all. A move below it ranks after every piece the export keeps at that
    instant, so leaving it out changes nothing the rule sees. No piece in an hour: no bar."""
    if limit <= 0:
        return {}  # watched markets take every place: no ranked piece is exported
    held: dict[float, dict[str, list[float]]] = defaultdict(dict)
    for start, end, outcome, move in pieces:
        if outcome in watched or abs(move) < min_abs - 1e-9:
            continue
        start, end = max(start, since), min(end, until)
        score = abs(move) * weights.get(outcome, 1.0)
        hour = math.floor(start / HOUR_SECONDS) * HOUR_SECONDS
        while hour < end:
            entry = held[hour].setdefault(outcome, [math.inf, 0.0])
            entry[0] = min(entry[0], score)
            entry[1] += min(end, hour + HOUR_SECONDS) - max(start, hour)
            hour += HOUR_SECONDS
    bars: dict[float, float] = {}
    for hour, outcomes in held.items():
        length = min(hour + HOUR_SECONDS, until) - max(hour, since)
        whole = sorted((score for score, seconds in outcomes.values()
                        if seconds >= length - 1e-6), reverse=True)  # fmt: skip
        if len(whole) >= limit:
            bars[hour] = whole[limit - 1]
        else:
            bars[hour] = min(score for score, _ in outcomes.values())
    return bars


HOUR_SECONDS = 3600.0


async def load_replay(
    database: Database,
    settings: Settings,
    alerting: Alerting,
    since: datetime,
    until: datetime,
    window: str | None = None,
    candidates: Sequence[float] = (),
) -> Replay:
    """The stored moves from ``since`` to ``until`` that could reach a threshold of the files,
    of the watchlists, or of ``candidates`` for ``window``, and the moves that could take their
    places in the export; raises :class:`ConfigError` when nothing is stored in that time.

    Two reads: the moves that could alert (each window's lowest threshold), then, in the hours
    where some of them ranked, the smaller moves whose score could outrank one of them
    (:func:`cap_bars`). The rest cannot change what the rule sees."""
    movers = settings.movers
    widths = {label: width for label, width in movers.labels.items()
              if label in alerting.thresholds or label == window}  # fmt: skip
    if not widths:
        raise ConfigError(
            [(alerting.sources[0], f"no threshold names a window of movers.windows "
              f"({', '.join(movers.labels)})")], "alerting files",
        )  # fmt: skip
    min_abs = movers.export.min_abs_move_pp
    filters = {v: getattr(movers.filters, v) for v in VENUES}
    weighted = movers.rank_by == "score"
    async with database.connection() as conn:
        extent = await stored_extent(conn, since, until)
        refreshed = await latest_refresh(conn)
        if extent is None:
            raise NoHistory(
                [("history", f"no stored prices between {since:%Y-%m-%d %H:%M} and "
                  f"{until:%Y-%m-%d %H:%M} UTC: run the exporter (or `movers backfill`) first")],
                "input",
            )  # fmt: skip
        own: dict[str, dict[str, float]] = defaultdict(dict)
        for venue in VENUES:
            entries = getattr(settings.venues, venue).watchlist
            found = await watched_markets(conn, [w.market for w in entries])
            for entry in entries:
                for market_id in found.get(entry.market, []):
                    own[market_id] |= {window_label(w): pp for w, pp in entry.move_pp.items()}
        watched = sorted(own)
        floors = {}
        for label in widths:
            options = [alerting.thresholds.get(label, 100.0)]
            options += candidates if label == window else []
            options += [t[label] for t in own.values() if label in t]
            floors[label] = min(options)
        eligibility = Eligibility(VENUES, [filters[v].min_volume_24h for v in VENUES], watched)
        hours = hourly(since, until)

        # Both reads narrow with the same daily ranges and hourly extremes, read once.
        bounds = MoveBounds(
            conn, eligibility=eligibility, windows=widths, staleness=movers.staleness,
            since=since, until=until, least=min(min_abs, *floors.values()),
            database=concurrent(database, settings),
        )  # fmt: skip

        async def read(
            bars: Mapping[str, Mapping[datetime, float]], weigh: bool, least: float
        ) -> tuple[list[Span], dict[str, list[Row]], dict[str, OutcomeInfo]]:
            spans = await move_spans(bounds, bars, weighted=weigh, min_abs=least)
            reads = spans_to_reads(
                ((f"{s.outcome_id}|{s.window}", s.start, s.end) for s in spans), widths,
                movers.staleness,
            )  # fmt: skip
            rows = await outcome_rows(conn, reads)
            info = await outcome_info(conn, sorted({s.outcome_id for s in spans}), watched)
            return spans, rows, info

        # 1. The moves that could alert.
        spans, rows, info = await read(
            {label: dict.fromkeys(hours, floors[label]) for label in widths}, False, 0.0
        )
        pieces = _pieces(spans, rows, info, floors, widths, settings)
        weights = {
            o.outcome_id: math.log1p(max(o.volume_24h or 0.0, 0.0)) if weighted else 1.0
            for o in info.values()
        }  # fmt: skip
        watched_outcomes = frozenset(o.outcome_id for o in info.values() if o.watched)
        limit = max(movers.export.max_series - len(watched), 0)
        # 2. Where they ranked, the smaller moves that could take their places in the export.
        bars = {
            label: {datetime.fromtimestamp(hour, UTC): bar for hour, bar in cap_bars(
                pieces[label], weights=weights, watched=watched_outcomes, limit=limit,
                min_abs=min_abs, since=unix(since), until=unix(until)).items()}
            for label in widths
        }  # fmt: skip
        rivals, rival_rows, rival_info = await read(bars, weighted, min_abs)
    rivals = [s for s in rivals if not rival_info[s.outcome_id].watched]
    rival_pieces = _pieces(rivals, rival_rows, rival_info, dict.fromkeys(widths, min_abs),
                           widths, settings)  # fmt: skip
    info |= rival_info
    for outcome in rival_info.values():
        weights.setdefault(
            outcome.outcome_id, math.log1p(max(outcome.volume_24h or 0.0, 0.0)) if weighted else 1.0
        )
    reread: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for span in rivals:
        reread[(span.outcome_id, span.window)].append((unix(span.start), unix(span.end)))
    markets: dict[str, MarketMoves] = {}
    for label in widths:
        # Where the second read covered an outcome, its pieces replace the first read's.
        merged = rival_pieces[label]
        for piece in pieces[label]:
            parts = [(piece[0], piece[1], piece[3])]
            for lo, hi in reread.get((piece[2], label), ()):
                parts = without(parts, lo, hi)
            merged += [(a, b, piece[2], move) for a, b, move in parts]
        shown = exported(merged, weights=weights, watched=watched_outcomes, limit=limit,
                         min_abs=min_abs)  # fmt: skip
        for start, end, outcome_id, move in shown:
            outcome = info[outcome_id]
            market = markets.get(outcome.market_id)
            if market is None:
                market = markets[outcome.market_id] = MarketMoves(
                    outcome.market_id, outcome.venue, outcome.category, outcome.title,
                    {label: [] for label in widths}, own.get(outcome.market_id, {}),
                    outcome.watched,
                )  # fmt: skip
            market.segments[label].append((start, end, move))
    return Replay(
        list(markets.values()), alerting, min_abs, since, until,
        every=movers.every.total_seconds(), phase=unix(refreshed) if refreshed else 0.0,
    )  # fmt: skip


def _pieces(
    spans: Sequence[Span],
    rows: Mapping[str, Sequence[Row]],
    info: Mapping[str, OutcomeInfo],
    floors: Mapping[str, float],
    widths: Mapping[str, timedelta],
    settings: Settings,
) -> dict[str, list[Piece]]:
    """Each window's moves of at least its floor in ``spans``, as the refresh computes them."""
    movers = settings.movers
    pieces: dict[str, list[Piece]] = {label: [] for label in widths}
    for span in spans:
        outcome = info.get(span.outcome_id)
        if outcome is None:
            continue
        width = widths[span.window]
        max_spread = getattr(movers.filters, outcome.venue).max_spread
        segments = move_segments(
            rows.get(span.outcome_id, []),
            width=width.total_seconds(),
            lo=unix(span.start),
            hi=unix(span.end),
            staleness=movers.staleness.total_seconds(),
            floor=floors[span.window],
            max_spread=None if outcome.watched else max_spread,
        )
        if outcome.end_time is not None and movers.exclude_resolving_within_window:
            # A market resolving within the window is left out of it (movers_ranked.sql).
            segments = without(segments, unix(outcome.end_time - width), unix(outcome.end_time))
        pieces[span.window] += [(a, b, span.outcome_id, move) for a, b, move in segments]
    return pieces


# -- the report -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarketMoves:
    """One market's stretches of large moves per window (``(start, end, move_pp)``, every one of
    at least the floor the replay was asked about) and what routes it."""

    market_id: str
    venue: str
    category: str
    title: str
    segments: dict[str, list[tuple[float, float, float]]]
    own_thresholds: dict[str, float] = field(default_factory=dict)
    """A watched market's MarketMoveLarge thresholds per window (its watchlist entry's)."""
    watched: bool = False


@dataclass
class Replay:
    """The inputs of every what-if: the moves, the rule and the routes."""

    markets: list[MarketMoves]
    alerting: Alerting
    min_abs_move_pp: float
    since: datetime
    until: datetime
    every: float = 0.0
    """Seconds between movers refreshes (0: every instant)."""
    phase: float = 0.0
    r"""An instant a refresh ran (unix seconds): the others are whole ``every``\ s from it."""

    def thresholds_of(
        self, market: MarketMoves, thresholds: Mapping[str, float]
    ) -> dict[str, float]:
        """The thresholds the rule compares this market's moves with, per window."""
        found: dict[str, float] = {}
        for window in market.segments:
            if window in market.own_thresholds:
                found[window] = market.own_thresholds[window]
            elif window in thresholds:
                exported = 0.0 if market.watched else self.min_abs_move_pp
                found[window] = max(thresholds[window], exported)
        return found

    def run(self, thresholds: Mapping[str, float] | None = None) -> Outcome:
        """The notifications with these window thresholds (default: the files')."""
        current = dict(self.alerting.thresholds if thresholds is None else thresholds)
        firings: list[Firing] = []
        routes: dict[str, Route] = {}
        by_market: dict[str, MarketMoves] = {}
        for market in self.markets:
            by_market[market.market_id] = market
            for window, threshold in self.thresholds_of(market, current).items():
                stretches = episodes(
                    sampled(above(market.segments[window], threshold), self.every, self.phase),
                    self.alerting.for_seconds,
                    self.alerting.keep_firing_seconds,
                )
                if not stretches:
                    continue
                labels = {
                    **self.alerting.rule_labels,
                    "alertname": ALERT,
                    "venue": market.venue,
                    "market_id": market.market_id,
                    "window": window,
                    "category": market.category,
                }
                _routed(self.alerting, labels, f"{market.market_id}|{window}", stretches,
                        firings, routes)  # fmt: skip
        return Outcome(notifications(firings, routes), by_market, current, self, routes)


@dataclass
class Outcome:
    """What a replay sent. An alert's key is ``market|window`` (MarketMoveLarge) or
    ``market|venue|trade`` (the trade signals); ``thresholds`` are per window, or per venue."""

    sent: list[Sent]
    markets: dict[str, MarketMoves]
    thresholds: dict[str, float]
    replay: Replay | TradeReplay | SurgeReplay | VolumeReplay
    routes: dict[str, Route]

    @property
    def days(self) -> float:
        return max((self.replay.until - self.replay.since).total_seconds() / 86400, 1 / 1440)

    def by_route(self) -> dict[str, list[Sent]]:
        found: dict[str, list[Sent]] = defaultdict(list)
        for s in self.sent:
            found[s.route].append(s)
        return dict(found)

    def messages(self) -> list[Sent]:
        """The notifications of the busiest route (each route messages its own receiver; the
        shipped tree has one chat route for this alert)."""
        routes = self.by_route()
        return max(routes.values(), key=len) if routes else []

    def summary(self, sent: Sequence[Sent] | None = None) -> dict[str, Any]:
        sent = self.messages() if sent is None else sent
        per_day = Counter(datetime.fromtimestamp(s.at, UTC).date().isoformat() for s in sent)
        busiest = per_day.most_common(1)[0] if per_day else (None, 0)
        return {
            "notifications": len(sent),
            "per_day_mean": round(len(sent) / self.days, 2),
            "busiest_day": {"date": busiest[0], "notifications": busiest[1]},
            "by_day": dict(sorted(per_day.items())),
        }

    def windows(self) -> dict[str, dict[str, Any]]:
        """Per window: its threshold, and the notifications it was new in."""
        sent = self.messages()
        found: dict[str, dict[str, Any]] = {}
        for window, threshold in self.thresholds.items():
            mine = [s for s in sent if any(k.split("|")[1] == window for k in s.new)]
            found[window] = {"threshold_pp": threshold, **self.summary(mine)}
            found[window]["markets"] = len(
                {k.split("|")[0] for s in mine for k in s.new if k.split("|")[1] == window}
            )
        return found

    def listed(self) -> list[dict[str, Any]]:
        """Each notification of :meth:`messages`: when, the markets in it and what was new."""
        found = []
        for s in self.messages():
            markets = sorted({k.split("|")[0] for k in s.firing})
            found.append({
                "at": datetime.fromtimestamp(s.at, UTC).isoformat(),
                "markets": [
                    {"market_id": m, "title": self.markets[m].title if m in self.markets else ""}
                    for m in markets
                ],
                "new": list(s.new),
            })  # fmt: skip
        return found

    def top_markets(self, limit: int) -> list[dict[str, Any]]:
        counts: Counter[str] = Counter()
        windows: dict[str, set[str]] = defaultdict(set)
        for s in self.messages():
            markets = {k.split("|")[0] for k in s.firing}
            for k in s.new:
                market, window = k.split("|")[:2]
                windows[market].add(window)
            for market in markets:
                counts[market] += 1
        top = []
        for market_id, count in counts.most_common(limit):
            info = self.markets.get(market_id)
            top.append({
                "market_id": market_id,
                "venue": info.venue if info else "",
                "title": info.title if info else "",
                "category": info.category if info else "",
                "notifications": count,
                "windows": sorted(windows[market_id], key=_window_order),
            })  # fmt: skip
        return top


@dataclass
class SurgeReplay:
    """Per window, each eligible outcome's stretches of a move of at least
    ``movers.category_threshold_pp`` (what the category aggregates count as moved), and each
    category's size: the inputs of CategorySurge."""

    moved: dict[str, list[tuple[float, float, str]]]
    """Per window: ``(start, end, category)`` of each outcome's moved stretch."""
    sizes: dict[str, int]
    alerting: Alerting
    since: datetime
    until: datetime
    every: float = 0.0
    phase: float = 0.0

    def run(self, counts: Mapping[str, float] | None = None) -> Outcome:
        """The notifications with these moved-market counts per window (default: the
        files')."""
        surge = self.alerting.surge
        assert surge is not None
        current = dict(surge.counts if counts is None else counts)
        firings: list[Firing] = []
        routes: dict[str, Route] = {}
        categories: dict[str, MarketMoves] = {}
        for window, count in current.items():
            by_category: dict[str, list[tuple[float, int]]] = defaultdict(list)
            for start, end, category in self.moved.get(window, []):
                by_category[category] += [(start, 1), (end, -1)]
            for category, changes in by_category.items():
                size = self.sizes.get(category, 0)
                stretches = episodes(
                    sampled(_surging(changes, count, surge.share, size), self.every,
                            self.phase),
                    surge.for_seconds, surge.keep_firing_seconds,
                )  # fmt: skip
                if not stretches:
                    continue
                labels = {**surge.rule_labels, "alertname": SURGE, "window": window,
                          "category": category}  # fmt: skip
                categories.setdefault(category, MarketMoves(category, "", category, category, {}))
                _routed(self.alerting, labels, f"{category}|{window}", stretches, firings, routes)
        return Outcome(notifications(firings, routes), categories, current, self, routes)


def _surging(
    changes: list[tuple[float, int]], count: float, share: float, size: int
) -> list[tuple[float, float]]:
    """Where at least ``count`` outcomes moved at once, and at least ``share`` of ``size``."""
    found: list[tuple[float, float]] = []
    moved, since = 0, None
    changes.sort()
    for k, (at, step) in enumerate(changes):
        moved += step
        if k + 1 < len(changes) and changes[k + 1][0] == at:
            continue  # every change at this instant first
        holds = moved >= count - 1e-9 and size > 0 and moved / size >= share - 1e-9
        if holds and since is None:
            since = at
        elif not holds and since is not None:
            found.append((since, at))
            since = None
    return found


async def load_surge_replay(
    database: Database,
    settings: Settings,
    alerting: Alerting,
    since: datetime,
    until: datetime,
) -> SurgeReplay:
    """The stored moves from ``since`` to ``until`` that the category aggregates count as
    moved, in the windows CategorySurge has a count for; raises :class:`NoHistory` when nothing
    is stored in that time."""
    movers = settings.movers
    surge = alerting.surge
    if surge is None:
        raise _problem(alerting.sources[0], f"no rule alerts {SURGE}")
    widths = {label: width for label, width in movers.labels.items() if label in surge.counts}
    if not widths:
        raise _problem(alerting.sources[0], f"no {SURGE_COUNT_RECORD} names a window of "
                       f"movers.windows ({', '.join(movers.labels)})")  # fmt: skip
    filters = {v: getattr(movers.filters, v) for v in VENUES}
    eligibility = Eligibility(VENUES, [filters[v].min_volume_24h for v in VENUES], ())
    async with database.connection() as conn:
        if await stored_extent(conn, since, until) is None:
            raise NoHistory(
                [("history", f"no stored prices between {since:%Y-%m-%d %H:%M} and "
                  f"{until:%Y-%m-%d %H:%M} UTC: run the exporter (or `movers backfill`) first")],
                "input",
            )  # fmt: skip
        refreshed = await latest_refresh(conn)
        floor = movers.category_threshold_pp
        hours = hourly(since, until)
        bounds = MoveBounds(
            conn,
            eligibility=eligibility,
            windows=widths,
            staleness=movers.staleness,
            since=since,
            until=until,
            least=floor,
            database=concurrent(database, settings),
        )
        spans = await move_spans(bounds, {label: dict.fromkeys(hours, floor) for label in widths})
        reads = spans_to_reads(((f"{s.outcome_id}|{s.window}", s.start, s.end) for s in spans),
                               widths, movers.staleness)  # fmt: skip
        rows = await outcome_rows(conn, reads)
        info = await outcome_info(conn, sorted({s.outcome_id for s in spans}), ())
        sizes = await category_sizes(conn, eligibility, since, until)
    pieces = _pieces(spans, rows, info, dict.fromkeys(widths, floor), widths, settings)
    moved = {label: [(a, b, info[o].category) for a, b, o, _ in found]
             for label, found in pieces.items()}  # fmt: skip
    return SurgeReplay(
        moved, sizes, alerting, since, until, every=movers.every.total_seconds(),
        phase=unix(refreshed) if refreshed else 0.0,
    )  # fmt: skip


TRADE_ALERTS = {"WhaleTrade": "whale", "WalletTrade": "wallet"}
"""The signals ``movers tune`` replays: alert name -> signal (exporter/signals.py)."""


@dataclass
class TradeReplay:
    """The stored trades that could have been a WhaleTrade or a WalletTrade, and the signals'
    settings that decide which were: each venue's whale size (a watched market's own
    instead), the watched wallets, the per-market cooldown, the minute's budget and how long
    an alert lasts (``resolve_after``). The exporter posts each to Alertmanager, whose route
    for it groups and times it."""

    alert: str
    trades: list[TradeRow]
    signals: SignalsConfig
    alerting: Alerting
    since: datetime
    until: datetime
    own_whale: dict[str, float] = field(default_factory=dict)
    """A watched market's own whale size, by market id."""

    def whales(self, threshold: float | None = None) -> dict[str, float]:
        """Each venue's whale size (``threshold`` instead, for a what-if); a venue switched
        off (null) has none."""
        sizes = {"polymarket": self.signals.whale.polymarket, "kalshi": self.signals.whale.kalshi}
        return {v: (size if threshold is None else threshold)
                for v, size in sizes.items() if size is not None}  # fmt: skip

    def run(self, threshold: float | None = None) -> Outcome:
        """The notifications with these whale sizes (default: the settings')."""
        whales = self.whales(threshold)
        wallets = self.signals.wallets
        cooldown = self.signals.cooldown.total_seconds()
        cooling: dict[tuple[str, str], float] = {}
        budget: list[float] = []
        firings: list[Firing] = []
        routes: dict[str, Route] = {}
        markets: dict[str, MarketMoves] = {}
        wanted = TRADE_ALERTS[self.alert]
        for trade in self.trades:
            if trade.trader is not None and trade.trader in wallets:
                signal = "wallet"
            else:
                limit = self.own_whale.get(trade.market_id, whales.get(trade.venue))
                if limit is None or trade.notional < limit - 1e-9:
                    continue
                signal = "whale"
            # As Signals.admit: a market's next of a signal waits the cooldown; at most
            # max_per_minute of all signals a minute.
            if cooling.get((signal, trade.market_id), float("-inf")) > trade.at:
                continue
            budget = [t for t in budget if t > trade.at - 60]
            if len(budget) >= self.signals.max_per_minute:
                continue
            budget.append(trade.at)
            cooling[(signal, trade.market_id)] = trade.at + cooldown
            if signal != wanted:
                continue
            labels = {"alertname": self.alert, "area": "signals", "severity": "info",
                      "signal": signal, "venue": trade.venue, "market_id": trade.market_id,
                      "category": trade.category, "title": trade.title,
                      "trade_id": trade.trade_id}  # fmt: skip
            markets.setdefault(trade.market_id, MarketMoves(
                trade.market_id, trade.venue, trade.category, trade.title, {}))  # fmt: skip
            end = trade.at + self.signals.resolve_after.total_seconds()
            key = f"{trade.market_id}|{trade.venue}|{trade.trade_id}"
            _routed(self.alerting, labels, key, [(trade.at, end)], firings, routes)
        return Outcome(notifications(firings, routes), markets, whales, self, routes)


@dataclass
class VolumeReplay:
    """The volume spikes the exporter's own check (the same query, ``signals.volume``) finds at
    each of its instants (every ``volume.every``) over the stored trades, and the signals'
    settings that decide which were sent: the factor, the per-market cooldown (at least the
    window), the minute's budget and ``resolve_after``."""

    spikes: list[tuple[float, VolumeSpike]]
    signals: SignalsConfig
    alerting: Alerting
    since: datetime
    until: datetime

    def floors(self) -> dict[str, float]:
        floor = self.signals.volume.floor
        sizes = {"polymarket": floor.polymarket, "kalshi": floor.kalshi}
        return {v: size for v, size in sizes.items() if size is not None}

    def run(self, factor: float | None = None) -> Outcome:
        """The notifications with this factor (default: the settings')."""
        factor = self.signals.volume.factor if factor is None else factor
        cooldown = max(self.signals.cooldown, self.signals.volume.window).total_seconds()
        cooling: dict[str, float] = {}
        budget: list[float] = []
        firings: list[Firing] = []
        routes: dict[str, Route] = {}
        markets: dict[str, MarketMoves] = {}
        for at, spike in self.spikes:
            if spike.volume < factor * spike.median - 1e-9:
                continue
            if cooling.get(spike.market_id, float("-inf")) > at:
                continue
            budget = [t for t in budget if t > at - 60]
            if len(budget) >= self.signals.max_per_minute:
                continue
            budget.append(at)
            cooling[spike.market_id] = at + cooldown
            labels = {"alertname": "VolumeSpike", "area": "signals", "severity": "info",
                      "signal": "volume", "venue": spike.venue, "market_id": spike.market_id,
                      "category": spike.category, "title": spike.title}  # fmt: skip
            markets.setdefault(spike.market_id, MarketMoves(
                spike.market_id, spike.venue, spike.category, spike.title, {}))  # fmt: skip
            end = at + self.signals.resolve_after.total_seconds()
            key = f"{spike.market_id}|{spike.venue}|{at:.0f}"
            _routed(self.alerting, labels, key, [(at, end)], firings, routes)
        return Outcome(notifications(firings, routes), markets, self.floors(), self, routes)


async def load_volume_replay(
    database: Database,
    settings: Settings,
    alerting: Alerting,
    since: datetime,
    until: datetime,
    candidates: Sequence[float] = (),
) -> VolumeReplay:
    """The exporter's volume check at each of its instants from ``since`` to ``until`` (every
    ``signals.volume.every``; none before ``min_history`` of trades), with the lowest factor of
    the settings' and ``candidates``; raises :class:`NoHistory` when no trade is stored."""
    config = settings.signals.volume
    store = SignalStore(database)
    oldest, _ = await store.trade_span()
    if oldest is None:
        raise NoHistory(
            [("history", "no stored trades: run the exporter first")], "input"
        )  # fmt: skip
    floors = {"polymarket": config.floor.polymarket, "kalshi": config.floor.kalshi}
    factor = min([config.factor, *candidates])
    spikes: list[tuple[float, VolumeSpike]] = []
    at = since
    while at < until:
        if at - oldest >= config.min_history:
            buckets = int(min(config.baseline, at - oldest) / config.window) - 1
            found = await store.volume_spikes(at, config.window, max(buckets, 1), factor, floors)
            spikes += [(unix(at), spike) for spike in found]
        at += config.every
    return VolumeReplay(spikes, settings.signals, alerting, since, until)


async def load_trade_replay(
    database: Database,
    settings: Settings,
    alerting: Alerting,
    alert: str,
    since: datetime,
    until: datetime,
    candidates: Sequence[float] = (),
) -> TradeReplay:
    """The stored trades from ``since`` to ``until`` that could be ``alert`` (WhaleTrade or
    WalletTrade) with the settings' whale sizes, the watchlists' or ``candidates``; raises
    :class:`NoHistory` when no trade is stored in that time."""
    signals = settings.signals
    async with database.connection() as conn:
        own: dict[str, float] = {}
        for venue in VENUES:
            entries = [w for w in getattr(settings.venues, venue).watchlist if w.whale]
            found = await watched_markets(conn, [w.market for w in entries])
            for entry in entries:
                for market_id in found.get(entry.market, []):
                    assert entry.whale is not None
                    own[market_id] = entry.whale
        sizes = [s for s in (signals.whale.polymarket, signals.whale.kalshi) if s is not None]
        floor = min([*sizes, *candidates, *own.values()], default=math.inf)
        # Every signal spends the minute's budget: whales and wallets are read together.
        trades = await notable_trades(conn, since, until, floor, list(signals.wallets))
        if not trades:
            stored = await (await conn.execute(
                "SELECT 1 FROM trades WHERE time >= %s AND time < %s LIMIT 1", (since, until)
            )).fetchone()  # fmt: skip
            if stored is None:
                raise NoHistory(
                    [("history", f"no stored trades between {since:%Y-%m-%d %H:%M} and "
                      f"{until:%Y-%m-%d %H:%M} UTC: run the exporter first")], "input",
                )  # fmt: skip
    return TradeReplay(alert, trades, signals, alerting, since, until, own)


def what_if_trades(replay: TradeReplay, candidates: Sequence[float]) -> list[dict[str, Any]]:
    """The notifications with each candidate whale size (every venue that has one)."""
    return [{"threshold": value, **replay.run(value).summary()} for value in candidates]


def _window_order(label: str) -> float:
    try:
        return parse_duration(label).total_seconds()
    except ValueError:
        return float("inf")


def what_if(replay: Replay, window: str, candidates: Sequence[float]) -> list[dict[str, Any]]:
    """The notifications with each candidate threshold for ``window`` (the others as they are)."""
    rows = []
    for value in candidates:
        thresholds = {**replay.alerting.thresholds, window: value}
        outcome = replay.run(thresholds)
        rows.append({
            "threshold_pp": value,
            **outcome.summary(),
            "window_notifications": outcome.windows()[window]["notifications"],
        })  # fmt: skip
    return rows


def concurrent(database: Database, settings: Settings) -> Database | None:
    """Where the replay may take a second connection to read at once (``None``: a server whose
    sessions are shared, ``database.write_concurrency`` 1, takes one statement at a time)."""
    return database if settings.database.write_concurrency > 1 else None


def unix(moment: datetime) -> float:
    return moment.timestamp()


def spans_to_reads(
    spans: Iterable[tuple[str, datetime, datetime]],
    widths: Mapping[str, timedelta],
    staleness: timedelta,
) -> list[tuple[str, datetime, datetime]]:
    """Each outcome's row reads for its spans (keys ``outcome|window``), merged where they
    overlap: a window's move from ``start`` to ``end`` needs the prices then and now, so the rows
    of ``[start - staleness, end)`` and of the same a window earlier (with the last row before
    each read, which :func:`outcome_rows` adds). A row between the two cannot be the price now
    or then of an instant of the span, nor make either go stale in it."""
    pieces: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for key, start, end in spans:
        outcome, window = key.rsplit("|", 1)
        width = widths[window]
        pieces[outcome] += [(start - staleness, end), (start - width - staleness, end - width)]
    reads = []
    for outcome, parts in pieces.items():
        parts.sort()
        lo, hi = parts[0]
        for start, end in parts[1:]:
            if start <= hi:
                hi = max(hi, end)
            else:
                reads.append((outcome, lo, hi))
                lo, hi = start, end
        reads.append((outcome, lo, hi))
    return reads


VENUES = ("polymarket", "kalshi")

__all__ = [
    "ALERT",
    "BOUNDARIES",
    "SURGE",
    "TRADE_ALERTS",
    "Alerting",
    "Firing",
    "MarketMoves",
    "NoHistory",
    "Outcome",
    "Replay",
    "Route",
    "Sent",
    "Surge",
    "SurgeReplay",
    "TradeReplay",
    "TuneJob",
    "VolumeReplay",
    "above",
    "alerting_files",
    "episodes",
    "load_replay",
    "load_surge_replay",
    "load_trade_replay",
    "load_volume_replay",
    "move_segments",
    "notifications",
    "read_alerting",
    "routes_for",
    "sampled",
    "spans_to_reads",
    "unix",
    "what_if",
    "what_if_trades",
    "without",
]


class TuneJob(Collector):
    """The replays of the last ``tune.days`` with the files' thresholds and the signals'
    settings (MarketMoveLarge, CategorySurge, WhaleTrade, WalletTrade), every ``tune.every``:
    what the Alerts dashboard shows beside what was sent (``movers tune`` prints the same)."""

    def __init__(self, database: Database, settings: Settings, files: tuple[Path, Path]) -> None:
        self.database = database
        self.settings = settings
        self.files = files
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        """Per alert and window (``all``: every message), the replay's summary."""
        self.computed_at: datetime | None = None

    async def run(self, now: datetime | None = None) -> dict[str, Any]:
        alerting = read_alerting(*self.files)
        settings = self.settings
        until = now or datetime.now(UTC)
        since = until - timedelta(days=settings.tune.days)
        rows: dict[tuple[str, str], dict[str, Any]] = {}

        def keep(alert: str, outcome: Outcome) -> None:
            rows[(alert, "all")] = outcome.summary()
            if alert in (ALERT, SURGE):
                rows.update({(alert, w): row for w, row in outcome.windows().items()})

        try:
            replay = await load_replay(self.database, settings, alerting, since, until)
        except NoHistory:
            replay = Replay([], alerting, settings.movers.export.min_abs_move_pp, since, until)
        keep(ALERT, replay.run())
        if alerting.surge is not None and set(alerting.surge.counts) & set(settings.movers.labels):
            try:
                surge = await load_surge_replay(self.database, settings, alerting, since, until)
            except NoHistory:
                surge = SurgeReplay({}, {}, alerting, since, until)
            keep(SURGE, surge.run())
        for alert in TRADE_ALERTS:
            try:
                trades = await load_trade_replay(
                    self.database, settings, alerting, alert, since, until
                )
            except NoHistory:
                trades = TradeReplay(alert, [], settings.signals, alerting, since, until)
            keep(alert, trades.run())
        self.rows, self.computed_at = rows, until
        return {f"{a} {w}": r["notifications"] for (a, w), r in rows.items() if w == "all"}

    def collect(self) -> Iterator[Metric]:
        labels = ["alertname", "window"]
        mean = GaugeMetricFamily(
            "movers_tune_notifications_per_day",
            "Notifications a day the alert would have sent over the last tune.days with the "
            'thresholds, timers and routes of the files today (movers tune); window="all": '
            "every message, a window: the messages it was new in.",
            labels=labels,
        )
        busiest = GaugeMetricFamily(
            "movers_tune_busiest_day_notifications",
            "Notifications on the busiest UTC day of the same replay.",
            labels=labels,
        )
        computed = GaugeMetricFamily(
            "movers_tune_computed_timestamp_seconds", "When the alert replay shown was computed."
        )
        # Empty until the first replay (a minute after start): no zeros that were never counted.
        if self.computed_at is not None:
            for (alert, window), row in self.rows.items():
                mean.add_metric([alert, window], row["per_day_mean"])
                busiest.add_metric([alert, window], row["busiest_day"]["notifications"])
            computed.add_metric([], self.computed_at.timestamp())
        yield mean
        yield busiest
        yield computed
