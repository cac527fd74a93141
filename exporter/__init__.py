"""prediction-movers: Polymarket and Kalshi market monitoring on TimescaleDB and Prometheus."""

__version__ = "0.1.0"
