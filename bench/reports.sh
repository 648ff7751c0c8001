#!/usr/bin/env bash
# Report benchmark (issue 17): the portfolio statements (PDF and CSV) of 100 clients generated
# as report jobs by one worker, end to end: the figures assembled from PostgreSQL through the
# wealth view (valuation at the period's end, the period's daily performance, transactions,
# provenance), rendered, archived and recorded. Prints statements per second and the worker's
# peak memory (VmHWM).
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379 \
#     bench/reports.sh
#
# The simulator serves EAM_BENCH_CLIENTS clients (default 100), each with a custody and a cash
# account at bank_a (10 positions, 60 transactions per account) over 31 days; bank_a keeps the
# month of daily snapshots. Each statement covers the days with reference rates.
source "$(dirname "$0")/lib.sh"

clients="${EAM_BENCH_CLIENTS:-100}"

build
fresh_database eam_bench_reports
export EAM_RATE_LIMIT__TENANT_PER_SECOND=1000000 EAM_RATE_LIMIT__TENANT_BURST=1000000
export EAM_RATE_LIMIT__USER_PER_SECOND=1000000 EAM_RATE_LIMIT__USER_BURST=1000000
start_sim --seed 21 --clients "$clients" --accounts-per-client 2 --positions-per-account 10 \
  --transactions-per-account 60 --days 31
pki="$work/sim/pki"
export EAM_MARKET_DATA__ECB_URL="https://127.0.0.1:$sim_port/ecb/stats/eurofxref"
export EAM_MARKET_DATA__CLIENT_CERT_REF="file://$pki/client.pem"
export EAM_MARKET_DATA__CLIENT_KEY_REF="file://$pki/client-key.pem"
export EAM_MARKET_DATA__CA_CERT_REF="file://$pki/ca.pem"
"$eam" fx-rates sync --history >&2
start_api
register_bank_a
start_worker
worker_pid=${pids[-1]}

tenant=$(new_tenant "Bench reports" '["bank_sync", "reports"]')
tok=$(token "$tenant" advisor,ops)
connection=$(new_connection "$tok" "$tenant")
curl -sf -X PATCH -H "Authorization: Bearer $tok" -H 'content-type: application/json' \
  -d '{"position_history_days": 31}' "$api/connections/$connection" >/dev/null
log "bank_a: $clients clients, a month of daily snapshots"
sync_and_wait "$tok" "$connection" >/dev/null
psql "$DATABASE_URL" -qc "ANALYZE"

ids=$(curl -sf -H "Authorization: Bearer $tok" "$api/clients" | jq -r '.[].id')
first=$(head -n 1 <<<"$ids")
to=$(curl -sf -H "Authorization: Bearer $tok" "$api/clients/$first/valuation" | jq -r .as_of)
from=$(psql "$DATABASE_URL" -qAtc "SELECT min(rate_date) FROM fx_rates")
count=$(wc -l <<<"$ids")
log "queueing $count statements ($from to $to, PDF and CSV)"
start=$(date +%s.%N)
for id in $ids; do
  curl -sf -H "Authorization: Bearer $tok" -H 'content-type: application/json' \
    -d "{\"kind\": \"portfolio_statement\", \"client_id\": \"$id\", \"from\": \"$from\", \"to\": \"$to\"}" \
    "$api/reports" >/dev/null
done
deadline=$((SECONDS + 1800))
while :; do
  done_count=$(psql "$DATABASE_URL" -qAtc \
    "SELECT count(*) FROM reports WHERE status IN ('succeeded', 'failed')")
  [ "$done_count" -ge "$count" ] && break
  [ $SECONDS -lt $deadline ] || { log "only $done_count of $count finished"; exit 1; }
  sleep 0.2
done
end=$(date +%s.%N)
failed=$(psql "$DATABASE_URL" -qAtc "SELECT count(*) FROM reports WHERE status = 'failed'")
[ "$failed" = 0 ] || {
  log "$failed failed: $(psql "$DATABASE_URL" -qAtc "SELECT error_message FROM reports WHERE status = 'failed' LIMIT 1")"
  exit 1
}
stats=$(psql "$DATABASE_URL" -qAtc "SELECT sum(size_bytes) FILTER (WHERE format = 'pdf'),
  round(avg(pages)), sum(size_bytes) FILTER (WHERE format = 'csv') FROM report_files")
peak=$(grep VmHWM "/proc/$worker_pid/status" | awk '{print $2 " " $3}')
elapsed=$(echo "$end - $start" | bc)
echo "Machine: $(machine)"
echo
echo "| statements | wall time | statements/s | PDF bytes (all), pages (mean), CSV zip bytes (all) | worker peak RSS |"
echo "|---|---|---|---|---|"
printf '| %s (PDF + CSV, %s to %s) | %.1f s | %.1f | %s | %s |\n' "$count" "$from" "$to" \
  "$elapsed" "$(echo "$count / $elapsed" | bc -l)" "${stats//|/, }" "$peak"
