#!/usr/bin/env bash
# Ingest benchmark (issue 8, measurement 1): a large tenant synced from the bank simulator on
# loopback over mTLS (bank_a: OAuth2, paged JSON) through the real worker into PostgreSQL, end
# to end; then a sync that finds nothing new; then the same rows loaded by plain COPY into the
# same tables, as the ceiling.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379 \
#     bench/ingest.sh            # 1,000 accounts, 50,000 positions, 1,000,000 transactions
#   EAM_BENCH_CLIENTS=10 bench/ingest.sh   # a tenth of it, for a quick look
#
# Uses its own database (eam_bench_ingest) and queue; prints a Markdown summary.
source "$(dirname "$0")/lib.sh"

clients="${EAM_BENCH_CLIENTS:-100}"
accounts_per_client=10 positions=100 transactions=1000
noop_runs="${EAM_BENCH_NOOP_RUNS:-5}"

build
fresh_database eam_bench_ingest
start_sim --seed 7 --clients $clients --accounts-per-client $accounts_per_client \
  --positions-per-account $positions --transactions-per-account "$transactions" --days 365
start_api
register_bank_a
start_worker

tenant=$(new_tenant "Bench ingest")
tok=$(token "$tenant" ops,advisor)
connection=$(new_connection "$tok" "$tenant")

log "first sync: $clients clients x $accounts_per_client accounts, $positions positions per custody account, $transactions transactions per account"
t0=$(date +%s.%N)
first=$(sync_and_wait "$tok" "$connection")
t1=$(date +%s.%N)
[ "$(jq -r .status <<<"$first")" = succeeded ] || { log "first sync: $first"; exit 1; }
printf '%s\n' "$first" >"$work/first-sync.json"

noop_ms=()
for _ in $(seq "$noop_runs"); do
  job=$(sync_and_wait "$tok" "$connection")
  [ "$(jq -r .status <<<"$job")" = succeeded ] || { log "no-op sync: $job"; exit 1; }
  [ "$(jq '[.counts[] | objects | .inserted + .updated] | add' <<<"$job")" = 0 ] \
    || { log "a repeated sync changed rows: $job"; exit 1; }
  noop_ms+=("$(jq .duration_ms <<<"$job")")
done

tables=(accounts securities positions cash_balances transactions)
declare -A rows
total=0
for t in "${tables[@]}"; do
  rows[$t]=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM $t")
  total=$((total + rows[$t]))
done
stop_all

# The ceiling: the same rows, exported and loaded back by COPY FROM STDIN into the emptied
# tables (same indexes, constraints and RLS policies), in one transaction.
log "COPY ceiling over $total rows"
for t in "${tables[@]}"; do
  psql "$DATABASE_URL" -qc "\\copy $t TO '$work/$t.copy'"
done
copy_script="$work/copy.sql"
{
  echo "BEGIN;"
  printf 'TRUNCATE %s CASCADE;\n' "$(IFS=,; echo "${tables[*]}")"
  for t in "${tables[@]}"; do printf "\\\\copy %s FROM '%s'\n" "$t" "$work/$t.copy"; done
  echo "COMMIT;"
} >"$copy_script"
c0=$(date +%s.%N)
psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 -f "$copy_script" >/dev/null
c1=$(date +%s.%N)

wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
run_s=$(jq '.duration_ms / 1000' <<<"$first")
copy=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
noop_sorted=$(printf '%s\n' "${noop_ms[@]}" | sort -n | tr '\n' ' ')
cat <<MD
Machine: $(machine)
Rows: $total (accounts ${rows[accounts]}, securities ${rows[securities]}, positions ${rows[positions]}, cash balances ${rows[cash_balances]}, transactions ${rows[transactions]})

| stage | seconds | rows/s |
|---|---|---|
| sync end to end (trigger to job done, as seen by the client) | $wall | $(awk -v n=$total -v s="$wall" 'BEGIN { printf "%d", n / s }') |
| sync run (worker: fetch, parse, normalize, load) | $run_s | $(awk -v n=$total -v s="$run_s" 'BEGIN { printf "%d", n / s }') |
| plain COPY of the same rows | $copy | $(awk -v n=$total -v s="$copy" 'BEGIN { printf "%d", n / s }') |

Sync at $(awk -v a="$wall" -v c="$copy" 'BEGIN { printf "%.0f", 100 * c / a }')% of COPY (end to end).
Sync that finds nothing new ($noop_runs runs, ms, sorted): $noop_sorted
MD
