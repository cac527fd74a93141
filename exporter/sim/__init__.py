"""The venue simulator: local Polymarket and Kalshi servers that speak the real wire formats.

Its names load on first use (PEP 562), so `movers` commands other than `movers sim` never import
the servers (aiohttp and the world model): `exporter.sim.cli` alone is light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exporter.sim.clock import ManualClock, RealClock
    from exporter.sim.scenario import Scenario, load_scenario
    from exporter.sim.server import Simulator, Urls
    from exporter.sim.truth import Truth

__all__ = ["ManualClock", "RealClock", "Scenario", "Simulator", "Truth", "Urls", "load_scenario"]

_HOMES = {
    "ManualClock": "clock",
    "RealClock": "clock",
    "Scenario": "scenario",
    "load_scenario": "scenario",
    "Simulator": "server",
    "Urls": "server",
    "Truth": "truth",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'exporter.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(f"exporter.sim.{home}"), name)
