#!/usr/bin/env bash
# Statement banks' first sync (issue 24): bank_b (SWIFT MT940 + MT535 files) and bank_c
# (camt.053 + semt.002) for a tenant of 8 clients x 6 accounts, 30 positions and 800
# transactions per account over 180 days: each bank alone, then both of one tenant at once.
# Prints each run's time and what it loaded, and where PostgreSQL spent the time: the
# database's active statements sampled every 0.2 s from pg_stat_activity (a sampling profile,
# lock waits included), counted per statement and wait.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379 \
#     bench/statements.sh
source "$(dirname "$0")/lib.sh"

build
fresh_database eam_bench_statements
start_sim --seed 24 --clients 8 --accounts-per-client 6 --positions-per-account 30 \
  --transactions-per-account 800 --days 180
start_api
register_file_banks
start_worker

# The sampler: one line per active statement of this database every 0.2 s.
db=${DATABASE_URL##*/}
(
  while :; do
    psql "$admin_url" -AtF $'\t' -c "SELECT left(regexp_replace(query, '\s+', ' ', 'g'), 100),
        coalesce(wait_event_type || ':' || wait_event, 'cpu')
      FROM pg_stat_activity WHERE datname = '$db' AND state = 'active' AND pid <> pg_backend_pid()
        AND query NOT LIKE '%pg_stat_activity%'" 2>/dev/null
    sleep 0.2
  done
) >"$work/samples.tsv" &
pids+=($!)

loaded() { # what the run loaded: documents, and inserted rows per kind
  jq -r '.counts | "\(.documents // 0) documents; inserted: " +
    ([to_entries[] | select(.value | type == "object") | "\(.key) \(.value.inserted)"] | join(", "))' <<<"$1"
}

run_one() { # TOKEN CONNECTION LABEL
  local t0 t1 job
  t0=$(date +%s.%N)
  job=$(sync_and_wait "$1" "$2")
  t1=$(date +%s.%N)
  [ "$(jq -r .status <<<"$job")" != failed ] || { log "$3: $job"; exit 1; }
  printf '| %s | %s | %.2f | %s |\n' "$3" "$(jq -r .status <<<"$job")" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$(loaded "$job")"
}

echo "Machine: $(machine)"
echo
echo "| sync | status | seconds (trigger to done) | loaded |"
echo "|---|---|---|---|"
for bank in bank_b bank_c; do
  tenant=$(new_tenant "Bench $bank")
  tok=$(token "$tenant" ops,advisor)
  connection=$(new_file_connection "$tok" "$tenant" "$bank")
  run_one "$tok" "$connection" "$bank first sync"
  run_one "$tok" "$connection" "$bank again (nothing new)"
done
# Both banks of one tenant at once.
tenant=$(new_tenant "Bench both")
tok=$(token "$tenant" ops,advisor)
b=$(new_file_connection "$tok" "$tenant" bank_b)
c=$(new_file_connection "$tok" "$tenant" bank_c)
run_one "$tok" "$b" "bank_b beside bank_c, one tenant" >"$work/both-b" &
both=$!
run_one "$tok" "$c" "bank_c beside bank_b, one tenant"
wait "$both"
cat "$work/both-b"
echo
psql "$DATABASE_URL" -Atc "SELECT 'positions ' || count(*) FROM positions"
psql "$DATABASE_URL" -Atc "SELECT 'transactions ' || count(*) FROM transactions"
echo
echo "Where PostgreSQL spent the time (samples x 0.2 s, all syncs above):"
echo
echo "| seconds | wait | statement (first 100 characters) |"
echo "|---|---|---|"
sort "$work/samples.tsv" | uniq -c | sort -rn | head -12 \
  | awk -F '\t' '{ n = $1 + 0; sub(/^ *[0-9]+ /, "", $1); printf "| %.1f | %s | `%s` |\n", n * 0.2, $2, $1 }'
