"""The provisioned dashboards, one module each (see grafana/build.py)."""
