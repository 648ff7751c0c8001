#!/usr/bin/env bash
# Wealth-view benchmark (issue 16): a client's consolidated valuation (about 1,000 positions
# across three custodians) and its one-year daily performance (TWR and XIRR over 366 daily
# valuations of 30 accounts), each under wrk.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379 \
#     bench/wealth.sh
#
# The simulator serves one client with 10 accounts (5 custody accounts of 67 positions) for
# 366 days through all three protocols; bank_a keeps a year of daily snapshots
# (position_history_days), bank_b and bank_c deliver a statement per day, and one rule per
# file bank assigns their accounts to the client. Every answer is checked complete (no
# `reasons`) before the load starts. EAM_BENCH_SECONDS (default 30), EAM_BENCH_CONNECTIONS
# (default 16).
source "$(dirname "$0")/lib.sh"

seconds="${EAM_BENCH_SECONDS:-30}"
connections="${EAM_BENCH_CONNECTIONS:-16}"
command -v wrk >/dev/null || { log "wrk is missing (apt-get install wrk)"; exit 1; }

build
fresh_database eam_bench_wealth
export EAM_RATE_LIMIT__TENANT_PER_SECOND=1000000 EAM_RATE_LIMIT__TENANT_BURST=1000000
export EAM_RATE_LIMIT__USER_PER_SECOND=1000000 EAM_RATE_LIMIT__USER_BURST=1000000
export EAM_DATABASE__MAX_CONNECTIONS="${EAM_DATABASE__MAX_CONNECTIONS:-16}"
start_sim --seed 12 --clients 1 --accounts-per-client 10 --positions-per-account 67 \
  --transactions-per-account 200 --days 366
pki="$work/sim/pki"
export EAM_MARKET_DATA__ECB_URL="https://127.0.0.1:$sim_port/ecb/stats/eurofxref"
export EAM_MARKET_DATA__CLIENT_CERT_REF="file://$pki/client.pem"
export EAM_MARKET_DATA__CLIENT_KEY_REF="file://$pki/client-key.pem"
export EAM_MARKET_DATA__CA_CERT_REF="file://$pki/ca.pem"
"$eam" fx-rates sync --history >&2
start_api
register_bank_a
register_file_banks
start_worker

tenant=$(new_tenant "Bench wealth")
tok=$(token "$tenant" advisor,ops)
dir="$work/tenant-secrets/$tenant"
mkdir -p "$dir"
cp "$work/sim/client_secret" "$pki/client.pem" "$pki/client-key.pem" "$dir/"
tls="\"client_cert_ref\": \"file://$dir/client.pem\", \"client_key_ref\": \"file://$dir/client-key.pem\""
post() { # PATH BODY: prints the answer
  curl -sf -H "Authorization: Bearer $tok" -H 'content-type: application/json' -d "$2" "$api$1"
}
bank_a=$(post /connections "{\"custodian\": \"bank_a\", \"name\": \"A\", \"client_id\": \"eam-bank-a\",
  \"client_secret_ref\": \"file://$dir/client_secret\", \"position_history_days\": 366, $tls}" | jq -r .id)
log "bank_a: a year of daily snapshots"
sync_and_wait "$tok" "$bank_a" >/dev/null
client=$(curl -sf -H "Authorization: Bearer $tok" "$api/clients" | jq -r '.[0].id')
curl -sf -X PATCH -H "Authorization: Bearer $tok" -H 'content-type: application/json' \
  -d '{"reporting_currency": "CHF"}' "$api/clients/$client" >/dev/null
bank_b=$(post /connections "{\"custodian\": \"bank_b\", \"name\": \"B\", $tls}" | jq -r .id)
bank_c=$(post /connections "{\"custodian\": \"bank_c\", \"name\": \"C\",
  \"client_secret_ref\": \"file://$dir/client_secret\", $tls}" | jq -r .id)
for c in "$bank_b" "$bank_c"; do
  post "/connections/$c/assignment-rules" "{\"pattern\": \"*\", \"client_id\": \"$client\"}" >/dev/null
  log "$c: a year of statement files"
  sync_and_wait "$tok" "$c" >/dev/null
done

# A year loaded in minutes: statistics as autovacuum would have them a little later (without
# them the planner takes the tables for empty; BENCHMARKS.md has both).
if [ -z "${EAM_BENCH_NO_ANALYZE:-}" ]; then psql "$DATABASE_URL" -qc "ANALYZE"; fi
end=$(curl -sf -H "Authorization: Bearer $tok" "$api/clients/$client/valuation" | jq -r .as_of)
from=$(psql "$DATABASE_URL" -qAtc "SELECT min(rate_date) FROM fx_rates")
valuation=$(curl -sf -H "Authorization: Bearer $tok" "$api/clients/$client/valuation?as_of=$end")
positions=$(jq '[.lines[] | select(.kind == "position")] | length' <<<"$valuation")
custodians=$(jq -c '[.by_custodian[].key]' <<<"$valuation")
[ "$(jq -r .total <<<"$valuation")" != null ] || { log "the valuation is incomplete"; exit 1; }
performance=$(curl -sf -H "Authorization: Bearer $tok" \
  "$api/clients/$client/performance?from=$from&to=$end")
[ "$(jq -c .reasons <<<"$performance")" = "[]" ] || { log "performance: $(jq -c .reasons <<<"$performance")"; exit 1; }
days=$(jq '.daily | length' <<<"$performance")
accounts=$(jq .accounts <<<"$performance")
log "valuation: $positions positions at $custodians; performance: $days days of $accounts accounts"

run_wrk() { # NAME PATH
  log "wrk: $1, $connections connections, ${seconds}s"
  wrk_row "$1" "$(wrk -t2 -c"$connections" -d"${seconds}s" --latency \
    -H "Authorization: Bearer $tok" "http://127.0.0.1:$api_port/api/v1$2")"
}

echo "Machine: $(machine); wrk on the same machine"
echo
echo "| request | requests/s | p50 | p99 |"
echo "|---|---|---|---|"
run_wrk "client valuation ($positions positions, 3 custodians)" \
  "/clients/$client/valuation?as_of=$end"
run_wrk "client performance ($days daily valuations, $accounts accounts)" \
  "/clients/$client/performance?from=$from&to=$end"
