"""The venue simulator: local Polymarket and Kalshi servers that speak the real wire formats."""

from exporter.sim.clock import ManualClock, RealClock
from exporter.sim.scenario import Scenario, load_scenario
from exporter.sim.server import Simulator, Urls
from exporter.sim.truth import Truth

__all__ = ["ManualClock", "RealClock", "Scenario", "Simulator", "Truth", "Urls", "load_scenario"]
