#!/bin/sh
# Alertmanager's entry point in docker compose. Secrets come from the environment (.env) and are
# written to files on a tmpfs, which alertmanager.yml reads (`*_file`); they never appear in a
# committed file or on the command line:
# - the four Discord/Slack webhook URLs; an integration whose URL is not set is left out of the
#   effective configuration, so an app you do not use sends nothing and fails nothing;
# - ALERTS_WEBHOOK_TOKEN, the bearer token the history receiver sends to the exporter (an empty
#   file without one: the exporter then asks for none).
set -eu
config=/etc/alertmanager/alertmanager.yml
run=/run/alertmanager
dir=$run/secrets
mkdir -p "$dir"
umask 077
write() {
  rm -f "$dir/$1"
  if [ -n "$2" ]; then
    printf '%s\n' "$2" > "$dir/$1"
  else
    echo "alertmanager: $3 is not set: the integrations that read it are off" >&2
  fi
}
write discord_markets_webhook_url "${DISCORD_MARKETS_WEBHOOK_URL:-}" DISCORD_MARKETS_WEBHOOK_URL
write discord_ops_webhook_url "${DISCORD_OPS_WEBHOOK_URL:-}" DISCORD_OPS_WEBHOOK_URL
write slack_markets_webhook_url "${SLACK_MARKETS_WEBHOOK_URL:-}" SLACK_MARKETS_WEBHOOK_URL
write slack_ops_webhook_url "${SLACK_OPS_WEBHOOK_URL:-}" SLACK_OPS_WEBHOOK_URL
printf '%s' "${ALERTS_WEBHOOK_TOKEN:-}" > "$dir/alerts_webhook_token"
unset DISCORD_MARKETS_WEBHOOK_URL DISCORD_OPS_WEBHOOK_URL SLACK_MARKETS_WEBHOOK_URL \
  SLACK_OPS_WEBHOOK_URL ALERTS_WEBHOOK_TOKEN

# The effective configuration: alertmanager.yml without the `*_configs:` blocks that read a secret
# file of $dir that was not written (or is empty).
awk -v dir="$dir" '
  function indent(s) { match(s, /^ */); return RLENGTH }
  function present(path,   line, ok) { ok = ((getline line < path) > 0); close(path); return ok }
  function flush(   i, keep, path) {
    keep = 1
    for (i = 1; i <= n; i++) {
      if (match(buf[i], /_file:[ ]*[^ #]+/)) {
        path = substr(buf[i], RSTART, RLENGTH)
        sub(/^_file:[ ]*/, "", path)
        gsub(/["\047]/, "", path)
        if (index(path, dir "/") == 1 && !present(path)) keep = 0
      }
    }
    if (keep) for (i = 1; i <= n; i++) print buf[i]
    n = 0
    inblock = 0
  }
  {
    if (inblock) {
      if ($0 ~ /^[ ]*$/ || indent($0) > blockindent) { buf[++n] = $0; next }
      flush()
    }
    if ($0 ~ /^[ ]*[a-z0-9]+_configs:[ ]*$/) {
      inblock = 1; blockindent = indent($0); n = 0; buf[++n] = $0; next
    }
    print
  }
  END { if (inblock) flush() }
' "$config" > "$run/alertmanager.yml"
exec /bin/alertmanager --config.file="$run/alertmanager.yml" \
  --storage.path=/alertmanager \
  --web.external-url="${ALERTMANAGER_EXTERNAL_URL:-http://localhost:9093}" "$@"
