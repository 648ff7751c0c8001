#!/usr/bin/env bash
# Runs a command with PostgreSQL and Redis available, starting project-local ones if needed.
#
#   scripts/with-services.sh CMD [ARGS...]
#
# If DATABASE_URL (resp. REDIS_URL) is set, that server is used as is. Otherwise a
# project-local server is started from the OS packages (installed with apt-get if missing),
# with its own data directory under .local/ and its own port (PostgreSQL 55432, Redis 56379,
# override with EAM_LOCAL_PG_PORT / EAM_LOCAL_REDIS_PORT), and stopped again when CMD exits.
# Likewise the AWS emulator the Secrets Manager and S3 tests talk to: EAM_MOTO_URL if set,
# else moto's server (PyPI moto[server], installed into .local/venv if missing) on port 55500
# (EAM_LOCAL_MOTO_PORT).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state="${EAM_LOCAL_DIR:-$root/.local}"
pg_port="${EAM_LOCAL_PG_PORT:-55432}"
redis_port="${EAM_LOCAL_REDIS_PORT:-56379}"
moto_port="${EAM_LOCAL_MOTO_PORT:-55500}"
mkdir -p "$state"

log() { printf '[services] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else log "need root to run: $*"; return 1; fi
}

install_packages() {
  log "installing OS packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

started_pg=""
started_redis=""
moto_pid=""
pg_run=()   # how to run PostgreSQL tools (as the postgres user when we are root)
pg_data=""

cleanup() {
  local rc=$?
  if [ -n "$moto_pid" ]; then
    kill "$moto_pid" >/dev/null 2>&1 || true
    wait "$moto_pid" 2>/dev/null || true
    log "stopped the AWS emulator on port $moto_port"
  fi
  if [ -n "$started_redis" ]; then
    redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
    log "stopped Redis on port $redis_port"
  fi
  if [ -n "$started_pg" ]; then
    "${pg_run[@]}" "$(pg_bindir)/pg_ctl" -D "$pg_data" -m fast -w stop >/dev/null 2>&1 || true
    log "stopped PostgreSQL on port $pg_port"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_postgres() {
  [ -n "$(pg_bindir)" ] || install_packages postgresql
  local bindir; bindir=$(pg_bindir) || { log "PostgreSQL binaries not found after install"; exit 1; }
  pg_data="$state/pg"
  if [ "$(id -u)" -eq 0 ]; then
    # PostgreSQL refuses to run as root: run it as the packages' postgres user, in a data
    # directory that user can reach (a checkout under /root is not reachable).
    id postgres >/dev/null 2>&1 || install_packages postgresql
    mkdir -p "$pg_data"
    chown postgres "$pg_data"
    if ! runuser -u postgres -- test -w "$pg_data" 2>/dev/null; then
      pg_data="/var/tmp/eam-pg-$(echo "$root" | md5sum | cut -c1-12)"
      mkdir -p "$pg_data"; chown postgres "$pg_data"
    fi
    pg_run=(runuser -u postgres --)
  else
    mkdir -p "$pg_data"
    pg_run=()
  fi
  chmod 700 "$pg_data"
  if [ ! -f "$pg_data/PG_VERSION" ]; then
    log "initialising a project-local PostgreSQL in $pg_data"
    "${pg_run[@]}" "$bindir/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if port_open "$pg_port"; then
    log "port $pg_port is busy; set EAM_LOCAL_PG_PORT or DATABASE_URL"; exit 1
  fi
  "${pg_run[@]}" "$bindir/pg_ctl" -D "$pg_data" -l "$pg_data/server.log" -w -t 60 \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -k $pg_data -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
  started_pg=1
  log "PostgreSQL on 127.0.0.1:$pg_port (data $pg_data)"
  export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/eam"
}

start_redis() {
  command -v redis-server >/dev/null 2>&1 || install_packages redis-server
  mkdir -p "$state/redis"
  if port_open "$redis_port"; then
    log "port $redis_port is busy; set EAM_LOCAL_REDIS_PORT or REDIS_URL"; exit 1
  fi
  redis-server --port "$redis_port" --bind 127.0.0.1 --daemonize yes --dir "$state/redis" \
    --save "" --appendonly no --pidfile "$state/redis/redis.pid" --logfile "$state/redis/redis.log"
  local deadline=$((SECONDS + 30))
  until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { log "Redis did not start; see $state/redis/redis.log"; exit 1; }
    sleep 0.1
  done
  started_redis=1
  log "Redis on 127.0.0.1:$redis_port"
  export REDIS_URL="redis://127.0.0.1:$redis_port"
}

# A Python with moto's server: the one on PATH if it has it, else a project-local venv.
moto_python() {
  if python3 -c 'import moto.server' >/dev/null 2>&1; then echo python3; return; fi
  local venv="$state/venv"
  if ! "$venv/bin/python" -c 'import moto.server' >/dev/null 2>&1; then
    command -v python3 >/dev/null 2>&1 || install_packages python3 python3-venv
    python3 -m venv "$venv" >/dev/null 2>&1 || { install_packages python3-venv; python3 -m venv "$venv"; }
    log "installing moto[server] into $venv"
    "$venv/bin/python" -m pip install -q 'moto[server]>=5.1,<6' >&2
  fi
  echo "$venv/bin/python"
}

start_moto() {
  local python; python=$(moto_python)
  mkdir -p "$state/moto"
  if port_open "$moto_port"; then
    log "port $moto_port is busy; set EAM_LOCAL_MOTO_PORT or EAM_MOTO_URL"; exit 1
  fi
  "$python" -m moto.server -H 127.0.0.1 -p "$moto_port" >"$state/moto/moto.log" 2>&1 &
  moto_pid=$!
  local deadline=$((SECONDS + 60))
  until port_open "$moto_port"; do
    kill -0 "$moto_pid" 2>/dev/null || { log "the AWS emulator exited; see $state/moto/moto.log"; moto_pid=""; exit 1; }
    [ $SECONDS -lt $deadline ] || { log "the AWS emulator did not start; see $state/moto/moto.log"; exit 1; }
    sleep 0.1
  done
  log "AWS emulator (moto) on 127.0.0.1:$moto_port"
  export EAM_MOTO_URL="http://127.0.0.1:$moto_port"
}

# The shared corpus of real bank statements (read by the normalizer's conformance tests): next
# to the checkout (../shared/corpus) or in the workplace's shared folder, unless
# EAM_CORPUS_DIR says where.
if [ -z "${EAM_CORPUS_DIR:-}" ]; then
  for candidate in "$root/../shared/corpus" "/work/shared/corpus"; do
    if [ -f "$candidate/index.json" ]; then
      EAM_CORPUS_DIR=$(cd "$candidate" && pwd)
      export EAM_CORPUS_DIR
      break
    fi
  done
fi
[ -n "${EAM_CORPUS_DIR:-}" ] && log "statement corpus: $EAM_CORPUS_DIR" \
  || log "no statement corpus found (set EAM_CORPUS_DIR); the corpus tests will say so"

if [ -z "${DATABASE_URL:-}" ]; then start_postgres; else log "using DATABASE_URL from the environment"; fi
if [ -z "${REDIS_URL:-}" ]; then start_redis; else log "using REDIS_URL from the environment"; fi
# EAM_NO_MOTO=1: the command needs no AWS emulator (the demo).
if [ -n "${EAM_NO_MOTO:-}" ]; then :
elif [ -z "${EAM_MOTO_URL:-}" ]; then start_moto; else log "using EAM_MOTO_URL from the environment"; fi

"$@"
