"""Storage: schema migrations, TimescaleDB policies, the writer and exporter-managed maintenance."""
