#!/usr/bin/env bash
# API benchmark (issue 8, measurement 2): holdings and transaction pages under wrk, 64
# connections, valid tokens across 100 tenants, each tenant synced from the simulator
# (one client, a custody account with 50 positions and a cash account).
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379 \
#     bench/api.sh
#
# Each page is measured twice: with the API's read cache (the default; every request still
# verifies its token, checks the caller's permission, scope and rate limits) and without it
# (EAM_API__READ_CACHE_MIB=0: every request reads PostgreSQL).
#
# EAM_BENCH_SECONDS (default 30) per run. The per-tenant and per-user rate limits are raised for
# the run (every request of a tenant uses one token, i.e. one user): the limiter still runs on
# every request, it just never refuses. Any non-2xx answer fails the run.
source "$(dirname "$0")/lib.sh"

tenants="${EAM_BENCH_TENANTS:-100}"
seconds="${EAM_BENCH_SECONDS:-30}"
connections="${EAM_BENCH_CONNECTIONS:-64}"
command -v wrk >/dev/null || { log "wrk is missing (apt-get install wrk)"; exit 1; }

build
fresh_database eam_bench_api
export EAM_RATE_LIMIT__TENANT_PER_SECOND=1000000 EAM_RATE_LIMIT__TENANT_BURST=1000000
export EAM_RATE_LIMIT__USER_PER_SECOND=1000000 EAM_RATE_LIMIT__USER_BURST=1000000
export EAM_DATABASE__MAX_CONNECTIONS="${EAM_DATABASE__MAX_CONNECTIONS:-16}"
start_sim --seed 11 --clients 1 --accounts-per-client 2 --positions-per-account 50 \
  --transactions-per-account 200 --days 90
start_api
register_bank_a
start_worker

log "syncing $tenants tenants"
targets="$work/targets.txt"
: >"$targets"
for i in $(seq "$tenants"); do
  tenant=$(new_tenant "Bench API $i")
  tok=$(token "$tenant" advisor,ops)
  connection=$(new_connection "$tok" "$tenant")
  runs+=("$tok $(curl -sf -X POST -H "Authorization: Bearer $tok" "$api/connections/$connection/sync" | jq -r .run_id)")
done
for entry in "${runs[@]}"; do
  read -r tok run <<<"$entry"
  deadline=$((SECONDS + 600))
  until [ "$(curl -sf -H "Authorization: Bearer $tok" "$api/jobs/$run" | jq -r .status)" = succeeded ]; do
    [ $SECONDS -lt $deadline ] || { log "run $run did not succeed"; exit 1; }
    sleep 0.1
  done
  custody=$(curl -sf -H "Authorization: Bearer $tok" "$api/accounts" \
    | jq -r '[.[] | select(.kind == "custody")][0].id')
  positions=$(curl -sf -H "Authorization: Bearer $tok" "$api/holdings?account_id=$custody" | jq '.holdings | length')
  [ "$positions" = 50 ] || { log "tenant $i: $positions positions on the holdings page, expected 50"; exit 1; }
  printf '%s %s\n' "$tok" "$custody" >>"$targets"
done

lua="$work/targets.lua"
cat >"$lua" <<LUA
-- Each request: a random tenant's token and custody account.
local targets = {}
for line in io.lines("$targets") do
  local tok, account = line:match("(%S+) (%S+)")
  targets[#targets + 1] = { tok = tok, account = account }
end
local path = os.getenv("BENCH_PATH")
math.randomseed(os.time())
request = function()
  local t = targets[math.random(#targets)]
  return wrk.format("GET", path:gsub("ACCOUNT", t.account), { ["Authorization"] = "Bearer " .. t.tok })
end
LUA

run_wrk() { # NAME PATH
  log "wrk: $1, $connections connections, ${seconds}s"
  wrk_row "$1" "$(BENCH_PATH="$2" wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$lua" \
    "http://127.0.0.1:$api_port")"
}

echo "Machine: $(machine); wrk on the same machine"
echo
echo "| page | requests/s | p50 | p99 |"
echo "|---|---|---|---|"
run_wrk "holdings (50 positions), read cache" "/api/v1/holdings?account_id=ACCOUNT"
run_wrk "transactions (100 per page), read cache" "/api/v1/transactions?account_id=ACCOUNT&limit=100"
curl -sf "http://127.0.0.1:$api_port/metrics" | grep -q '^eam_read_cache_live 1$' \
  || { log "the read cache was not following the change feed"; exit 1; }
curl -sf "http://127.0.0.1:$api_port/metrics" | grep '^eam_read_cache_lookups_total' >&2
stop_api
EAM_API__READ_CACHE_MIB=0 start_api
run_wrk "holdings (50 positions), no cache" "/api/v1/holdings?account_id=ACCOUNT"
run_wrk "transactions (100 per page), no cache" "/api/v1/transactions?account_id=ACCOUNT&limit=100"
