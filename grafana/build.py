"""Write the provisioned Grafana dashboards (grafana/dashboards/*.json) from their code.

Each dashboard is a module of ``grafana/boards/``, built with ``grafana-foundation-sdk``
(Grafana's dashboards-as-code library; ``boards/common.py`` holds what they share). The JSON
files are checked in (Grafana reads them); the modules are their source. After editing:
``.venv/bin/python grafana/build.py`` (a test fails while the checked-in JSON differs from what
this writes).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # the boards package beside this file

from boards import (  # noqa: E402
    alerts,
    category_trends,
    cross_venue,
    hot_markets,
    ingest_health,
    market_detail,
    signals,
    top_movers,
    traders,
)
from boards.common import rendered  # noqa: E402
from grafana_foundation_sdk.builders.dashboard import Dashboard  # noqa: E402

OUT = HERE / "dashboards"
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "top-movers.json": top_movers.build,
    "category-trends.json": category_trends.build,
    "market-detail.json": market_detail.build,
    "ingest-health.json": ingest_health.build,
    "traders.json": traders.build,
    "alerts.json": alerts.build,
    "signals.json": signals.build,
    "hot-markets.json": hot_markets.build,
    "cross-venue.json": cross_venue.build,
}


def render() -> dict[str, str]:
    """File name -> JSON text, as checked in."""
    return {name: json.dumps(rendered(build()), indent=2, ensure_ascii=False) + "\n"
            for name, build in DASHBOARDS.items()}  # fmt: skip


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(DASHBOARDS)} dashboards to {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
