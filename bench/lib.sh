# Shared by the benchmark scripts: builds the release binary and starts the stack (bank
# simulator, worker, API) on loopback against DATABASE_URL / REDIS_URL, in a scratch
# database and queue of its own. Sourced, not run.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/eam-target}"
eam="$CARGO_TARGET_DIR/release/eam"
work="${EAM_BENCH_DIR:-$root/.local/bench}"
api_port="${EAM_BENCH_API_PORT:-18080}"
sim_port="${EAM_BENCH_SIM_PORT:-18443}"
pids=()

log() { printf '[bench] %s\n' "$*" >&2; }

stop_all() {
  local p
  for p in "${pids[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]:-}"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null || true
  done
  pids=()
}
trap stop_all EXIT

build() {
  log "building the release binary"
  (cd "$root" && cargo build --release --quiet --bin eam)
}

# A fresh database for the run, derived from DATABASE_URL.
fresh_database() {
  local name=$1
  local base="${DATABASE_URL:?set DATABASE_URL (or run through scripts/with-services.sh)}"
  admin_url="${base%/*}/postgres"
  export DATABASE_URL="${base%/*}/$name"
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null
  export EAM_REDIS__QUEUE="eam-bench-$name"
  redis-cli -u "${REDIS_URL:?set REDIS_URL}" --scan --pattern "*$EAM_REDIS__QUEUE*" \
    | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null
  rm -rf "$work" && mkdir -p "$work"
  export EAM_API__BIND="127.0.0.1:$api_port"
  export EAM_API__PUBLIC_URL="http://127.0.0.1:$api_port"
  export EAM_AUTH__ISSUER="http://127.0.0.1:$api_port/auth"
  export EAM_AUTH__LOCAL_ISSUER_DIR="$work/issuer"
  export EAM_ARCHIVE__DIR="$work/archive"
  export EAM_LOG__LEVEL="${EAM_LOG__LEVEL:-warn}"
  export EAM_WORKER__METRICS_BIND="127.0.0.1:0"
  # Tenants' secret files live under the platform's root, one directory per tenant; the
  # simulator is on loopback, which production refuses for bank addresses.
  export EAM_SECRETS__TENANT_FILE_ROOT="$work/tenant-secrets"
  export EAM_EGRESS__ALLOW_PRIVATE_ADDRESSES=true
  "$eam" migrate >/dev/null
  platform_tenant=$(psql "$DATABASE_URL" -qAtc \
    "INSERT INTO tenants (id, name) VALUES (gen_random_uuid(), 'Platform operator') RETURNING id")
}

wait_port() { # PORT LOG
  local port=$1 deadline=$((SECONDS + 120))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { log "nothing listens on $port"; head -5 "$2" >&2; exit 1; }
    sleep 0.1
  done
}

# start_sim ARGS...: the simulator with the given size flags.
start_sim() {
  "$eam" bank-sim --bind "127.0.0.1:$sim_port" --dir "$work/sim" "$@" >"$work/sim.log" 2>&1 &
  pids+=($!)
  wait_port "$sim_port" "$work/sim.log"
}

start_api() {
  "$eam" serve >>"$work/api.log" 2>&1 &
  api_pid=$!
  pids+=("$api_pid")
  wait_port "$api_port" "$work/api.log"
}

stop_api() {
  kill "$api_pid" 2>/dev/null || true
  wait "$api_pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while (exec 3<>"/dev/tcp/127.0.0.1/$api_port") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { log "the API did not stop"; exit 1; }
    sleep 0.1
  done
}

start_worker() {
  "$eam" work "$@" >"$work/worker.log" 2>&1 &
  pids+=($!)
}

api="http://127.0.0.1:$api_port/api/v1"

token() { # token TENANT ROLES
  "$eam" token --tenant "$1" --roles "$2" --ttl 86400 --mfa
}

# new_tenant NAME: prints the id of a tenant created through the admin API, by a platform
# admin of the operator's own tenant (made once, directly in the database).
new_tenant() { # NAME [MODULES as a JSON array, default ["bank_sync"]]
  local admin
  admin=$(token "$platform_tenant" platform_admin)
  curl -sf -H "Authorization: Bearer $admin" -H 'content-type: application/json' \
    -d "{\"name\": \"$1\", \"modules\": ${2:-[\"bank_sync\"]}}" "$api/tenants" | jq -r .id
}

# register_bank_a: the platform admin points the custodian registry's bank_a at the simulator
# (its URL and CA); once per run, after start_api.
register_bank_a() {
  local admin pki="$work/sim/pki"
  admin=$(token "$platform_tenant" platform_admin)
  curl -sf -X PUT -H "Authorization: Bearer $admin" -H 'content-type: application/json' -d @- \
    "$api/custodians/bank_a" >/dev/null <<JSON
{"name": "Bank A (simulator)", "protocol": "bank_a", "base_url": "https://127.0.0.1:$sim_port",
 "ca_cert_ref": "file://$pki/ca.pem"}
JSON
}

# new_connection TOKEN TENANT: a bank_a connection to the simulator, its credentials copied
# into the tenant's own secret directory; prints its id.
new_connection() {
  local pki="$work/sim/pki" dir="$work/tenant-secrets/$2"
  mkdir -p "$dir"
  cp "$work/sim/client_secret" "$dir/client_secret"
  cp "$pki/client.pem" "$dir/client.pem"
  cp "$pki/client-key.pem" "$dir/client-key.pem"
  curl -sf -H "Authorization: Bearer $1" -H 'content-type: application/json' -d @- \
    "$api/connections" <<JSON | jq -r .id
{"custodian": "bank_a", "name": "Bench bank",
 "client_id": "eam-bank-a", "client_secret_ref": "file://$dir/client_secret",
 "client_cert_ref": "file://$dir/client.pem", "client_key_ref": "file://$dir/client-key.pem"}
JSON
}

# sync_and_wait TOKEN CONNECTION: triggers a sync, waits for its end, prints the job as JSON.
sync_and_wait() {
  local run job status last="" deadline=$((SECONDS + 3600))
  run=$(curl -sf -X POST -H "Authorization: Bearer $1" "$api/connections/$2/sync" | jq -r .run_id)
  log "run $run queued at $(date +%T.%N)"
  while :; do
    # Polled cheaply (no jq per poll): the poller must not steal CPU from the sync it times.
    job=$(curl -sf -H "Authorization: Bearer $1" "$api/jobs/$run")
    status=$(grep -o '"status":"[a-z_]*"' <<<"$job" | head -n 1 | cut -d'"' -f4)
    case "$status" in
      succeeded|succeeded_with_breaks|failed|dead|cancelled) break ;;
    esac
    [ $SECONDS -lt $deadline ] || { log "run $run still $status"; exit 1; }
    [ "$status" = "$last" ] || log "run $run $status at $(date +%T.%N)"
    last=$status
    sleep 0.2
  done
  printf '%s\n' "$job"
}

machine() {
  printf '%s, %s vCPU, %s RAM, %s' \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "$(nproc)" \
    "$(free -h | awk '/Mem:/ {print $2}')" "$(psql "$DATABASE_URL" -Atc 'SHOW server_version')"
}

# wrk_row NAME WRK_OUTPUT: keeps wrk's output, fails on any non-2xx answer, prints a table row
# (name, requests/s, p50, p99).
wrk_row() {
  printf '%s\n' "$2" >"$work/wrk-$1.txt"
  if grep -q 'Non-2xx' <<<"$2"; then log "$1: non-2xx answers"; printf '%s\n' "$2"; exit 1; fi
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$2")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$2")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$2")
  printf '| %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99"
}

# register_file_banks: the platform admin points bank_b (SWIFT statement files) and bank_c
# (ISO 20022) at the simulator; once per run, after start_api.
register_file_banks() {
  local admin pki="$work/sim/pki" code path
  admin=$(token "$platform_tenant" platform_admin)
  for code in bank_b bank_c; do
    path=${code/_/-}
    curl -sf -X PUT -H "Authorization: Bearer $admin" -H 'content-type: application/json' -d @- \
      "$api/custodians/$code" >/dev/null <<JSON
{"name": "$code (simulator)", "protocol": "$code", "base_url": "https://127.0.0.1:$sim_port/$path",
 "ca_cert_ref": "file://$pki/ca.pem"}
JSON
  done
}

# new_file_connection TOKEN TENANT CUSTODIAN: a bank_b or bank_c connection to the simulator
# with the tenant's copy of the client identity (and bank_c's secret); prints its id.
new_file_connection() {
  local pki="$work/sim/pki" dir="$work/tenant-secrets/$2" secret=""
  mkdir -p "$dir"
  cp "$work/sim/client_secret" "$dir/client_secret"
  cp "$pki/client.pem" "$dir/client.pem"
  cp "$pki/client-key.pem" "$dir/client-key.pem"
  [ "$3" = bank_c ] && secret=", \"client_secret_ref\": \"file://$dir/client_secret\""
  curl -sf -H "Authorization: Bearer $1" -H 'content-type: application/json' -d @- \
    "$api/connections" <<JSON | jq -r .id
{"custodian": "$3", "name": "Bench $3",
 "client_cert_ref": "file://$dir/client.pem", "client_key_ref": "file://$dir/client-key.pem"$secret}
JSON
}
