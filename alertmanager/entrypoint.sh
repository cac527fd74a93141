#!/bin/sh
# Alertmanager's entry point in docker compose: the webhook URLs come from the environment (.env)
# and are written to files on a tmpfs, which alertmanager.yml reads (`*_url_file`); they never
# appear in a committed file or on the command line.
set -eu
dir=/run/alertmanager/secrets
mkdir -p "$dir"
umask 077
write() {
  if [ -n "$2" ]; then
    printf '%s\n' "$2" > "$dir/$1"
  else
    echo "alertmanager: $3 is not set, so notifications to it fail; set it in .env, or remove" \
         "that app's *_configs block from alertmanager.yml (README: Setting the webhooks)" >&2
  fi
}
write discord_markets_webhook_url "${DISCORD_MARKETS_WEBHOOK_URL:-}" DISCORD_MARKETS_WEBHOOK_URL
write discord_ops_webhook_url "${DISCORD_OPS_WEBHOOK_URL:-}" DISCORD_OPS_WEBHOOK_URL
write slack_markets_webhook_url "${SLACK_MARKETS_WEBHOOK_URL:-}" SLACK_MARKETS_WEBHOOK_URL
write slack_ops_webhook_url "${SLACK_OPS_WEBHOOK_URL:-}" SLACK_OPS_WEBHOOK_URL
unset DISCORD_MARKETS_WEBHOOK_URL DISCORD_OPS_WEBHOOK_URL SLACK_MARKETS_WEBHOOK_URL SLACK_OPS_WEBHOOK_URL
exec /bin/alertmanager --config.file=/etc/alertmanager/alertmanager.yml \
  --storage.path=/alertmanager \
  --web.external-url="${ALERTMANAGER_EXTERNAL_URL:-http://localhost:9093}" "$@"
