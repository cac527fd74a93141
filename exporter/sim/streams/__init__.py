"""Simulated websockets: Polymarket's CLOB market channel and real-time data socket, and Kalshi's
Trade API stream, one module each over the shared connection (``connection.py``)."""

from exporter.sim.streams.kalshi import (
    KALSHI_WS_PATH,
    KalshiStream,
    load_public_keys,
    verify_kalshi_signature,
)
from exporter.sim.streams.polymarket import PolymarketStream, RtdsStream

__all__ = [
    "KALSHI_WS_PATH",
    "KalshiStream",
    "PolymarketStream",
    "RtdsStream",
    "load_public_keys",
    "verify_kalshi_signature",
]
