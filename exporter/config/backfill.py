"""The history backfill: what is fetched from the venues' price history, how far back, how
often the service looks for outcomes that need it."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from exporter.config.types import PositiveDuration, _Section

FIDELITIES = (timedelta(minutes=1), timedelta(hours=1), timedelta(days=1))
"""The resolutions both venues serve (Kalshi's candle periods: 1, 60 and 1440 minutes)."""


def _served(value: timedelta) -> timedelta:
    if value not in FIDELITIES:
        raise PydanticCustomError("fidelity", "must be 1m, 1h or 1d (what both venues serve)")
    return value


Fidelity = Annotated[PositiveDuration, AfterValidator(_served)]


class BackfillConfig(_Section):
    """On first start and whenever an outcome joins the hot set or watchlist, its recent
    history at ``hot_fidelity``; every other open outcome's at ``others_fidelity``. History
    requests take only the rate budget live ingestion leaves."""

    enabled: bool = True
    since: PositiveDuration = Field(default=timedelta(days=7), le=timedelta(days=400))
    """How far back history is fetched (never past ``storage.retention.snapshots``)."""
    hot_fidelity: Fidelity = timedelta(minutes=1)
    """Resolution for the hot set and watchlist (up to each venue's ``stream.size`` outcomes)."""
    others_fidelity: Fidelity | None = timedelta(hours=1)
    """Resolution for every other open outcome; null leaves them without history."""
    every: PositiveDuration = timedelta(minutes=1)
    """How often the service looks for outcomes whose history is missing."""
    concurrency: int = Field(default=16, ge=1, le=64)
    """History requests in flight at once, per venue: the rate budget paces them, so this only
    needs to cover the venue's latency (requests a second times seconds a request)."""
    points_held: int = Field(default=500_000, ge=1_000)
    """History points a venue's pass holds at once in answers being asked, parsed or written
    (about 160 bytes each as rows): a request waits until its most points fit. Bounds the
    exporter's memory when answers are large (a week of minute points for 20 tokens is 200,000)
    and arrive faster than the database writes them."""
