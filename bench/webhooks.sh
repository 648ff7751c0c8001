#!/usr/bin/env bash
# Webhook benchmark (issue 18): events delivered per second by one worker to a local receiver,
# and the outbox lag (an event's commit to its delivery's success) under a steady load.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379 \
#     bench/webhooks.sh
#
# The receiver is Python's ThreadingHTTPServer answering 204 (on loopback; the worker runs with
# egress.allow_private_addresses). Events are written the way the triggers write them, through
# the database function `emit_event` (one endpoint subscribed, so one delivery each):
#   1. a burst of EAM_BENCH_EVENTS (default 5,000) committed at once: deliveries per second;
#   2. EAM_BENCH_RATE events per second (default 200) for EAM_BENCH_SECONDS (default 20), one
#      transaction each: the lag's p50/p99/max (delivered_at - occurred_at).
source "$(dirname "$0")/lib.sh"

events="${EAM_BENCH_EVENTS:-5000}"
rate="${EAM_BENCH_RATE:-200}"
seconds="${EAM_BENCH_SECONDS:-20}"

build
fresh_database eam_bench_webhooks
export EAM_EGRESS__ALLOW_PRIVATE_ADDRESSES=true
receiver_port=$((api_port + 7))
python3 - "$receiver_port" >"$work/receiver.log" 2>&1 <<'PY' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pids+=($!)
wait_port "$receiver_port" "$work/receiver.log"
start_api
tenant=$(new_tenant "Bench webhooks")
admin=$(token "$tenant" tenant_admin)
# A new tenant's policy asks a second admin to approve a webhook endpoint (issue 19).
approval=$(curl -sf -H "Authorization: Bearer $admin" -H 'content-type: application/json' \
  -d "{\"url\": \"http://127.0.0.1:$receiver_port/hook\", \"event_types\": [\"sync.failed\"]}" \
  "$api/webhooks" | jq -r .approval_id)
second=$("$eam" token --tenant "$tenant" --roles tenant_admin --subject bench-second-admin --ttl 3600 --mfa)
curl -sf -H "Authorization: Bearer $second" -H 'content-type: application/json' -d '{}' \
  "$api/approvals/$approval/approve" >/dev/null
start_worker
worker_pid=${pids[-1]}

wait_delivered() { # COUNT: waits until COUNT deliveries succeeded
  local deadline=$((SECONDS + 900))
  while [ "$(psql "$DATABASE_URL" -qAtc "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'")" -lt "$1" ]; do
    [ $SECONDS -lt $deadline ] || { log "deliveries did not finish"; exit 1; }
    sleep 0.2
  done
}

log "burst: $events events in one transaction"
start=$(date +%s.%N)
psql "$DATABASE_URL" -qc "SELECT count(emit_event('$tenant', 'sync.failed', 'bench:' || g,
  jsonb_build_object('n', g, 'connection_name', 'bench', 'custodian', 'bank_a')))
  FROM generate_series(1, $events) g" >/dev/null
wait_delivered "$events"
end=$(date +%s.%N)
burst_rate=$(echo "$events / ($end - $start)" | bc -l)
printf 'burst: %d events delivered in %.2f s = %.0f events/s\n' "$events" "$(echo "$end - $start" | bc -l)" "$burst_rate"

log "steady: $rate events/s for $seconds s"
total=$((rate * seconds))
python3 - "$DATABASE_URL" "$tenant" "$rate" "$seconds" <<'PY'
import subprocess, sys, time
url, tenant, rate, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
p = subprocess.Popen(["psql", url, "-q", "-o", "/dev/null"], stdin=subprocess.PIPE, text=True)
start = time.monotonic()
for i in range(rate * seconds):
    target = start + i / rate
    now = time.monotonic()
    if target > now:
        time.sleep(target - now)
    p.stdin.write(f"SELECT emit_event('{tenant}', 'sync.failed', 'steady:{i}', '{{}}'::jsonb);\n")
    p.stdin.flush()
p.stdin.close()
p.wait()
PY
wait_delivered $((events + total))
psql "$DATABASE_URL" -qAtc "
  SELECT format('steady: %s events, lag p50 %s ms, p99 %s ms, max %s ms',
    count(*),
    round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
    round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1),
    round(max(ms)::numeric, 1))
  FROM (SELECT extract(epoch FROM d.delivered_at - e.occurred_at) * 1000 AS ms
        FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
        WHERE e.subject LIKE 'steady:%') s"
printf 'worker peak RSS: %s\n' "$(grep VmHWM /proc/$worker_pid/status | awk '{print $2 " " $3}')"
