#!/bin/sh
# The exporter image's entry point: `movers run` migrates, then runs until SIGTERM.
# In the compose `demo` profile a `simulator` service is on the network: the exporter then reads
# the simulated venues instead of the real ones (MOVERS_SIMULATOR names that host; empty: never).
set -eu
# An optional movers.yaml mounted at /etc/movers (docker-compose.yml mounts ./config there).
if [ -z "${MOVERS_CONFIG:-}" ] && [ -f /etc/movers/movers.yaml ]; then
  export MOVERS_CONFIG=/etc/movers/movers.yaml
fi
# One lookup, no waiting: outside the demo profile the name does not resolve and the exporter
# starts at once against the real venues; in the demo profile compose has started the simulator
# (the exporter waits for the database's healthcheck first, by which time its name resolves).
if [ "${1:-}" = "run" ] && [ -n "${MOVERS_SIMULATOR:-}" ] \
  && getent hosts "$MOVERS_SIMULATOR" >/dev/null 2>&1; then
  sim=$MOVERS_SIMULATOR
  echo "movers-entrypoint: reading the venue simulator at $sim (demo profile)" >&2
  export MOVERS__VENUES__POLYMARKET__GAMMA_URL="http://$sim:8700"
  export MOVERS__VENUES__POLYMARKET__CLOB_URL="http://$sim:8701"
  export MOVERS__VENUES__POLYMARKET__DATA_URL="http://$sim:8702"
  export MOVERS__VENUES__POLYMARKET__WS_URL="ws://$sim:8701/ws/market"
  export MOVERS__VENUES__KALSHI__REST_URL="http://$sim:8703/trade-api/v2"
  export MOVERS__VENUES__KALSHI__WS_URL="ws://$sim:8703/trade-api/ws/v2"
  # The demo's cross-venue pairs (twins in the simulated world), unless the environment names
  # a pairs file of its own.
  export MOVERS__PAIRS__FILE="${MOVERS__PAIRS__FILE:-scenarios/demo-pairs.yaml}"
fi
exec movers "$@"
