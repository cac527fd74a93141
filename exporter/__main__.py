"""`python -m exporter` is the `movers` command."""

from exporter.cli import main

raise SystemExit(main())
