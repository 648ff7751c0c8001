#!/usr/bin/env bash
# Regenerates (or, with --check, verifies) the offline data of the compile-checked SQL in
# `.sqlx/`, against a scratch database with the migrations applied.
#
#   scripts/with-services.sh scripts/sqlx-prepare.sh           # rewrite .sqlx/
#   scripts/with-services.sh scripts/sqlx-prepare.sh --check   # fail if .sqlx/ is stale
#
# DATABASE_URL names the PostgreSQL server (any database on it, as a superuser); the scratch
# database `eam_sqlx_<pid>` is created there, migrated with `sqlx migrate run`, and dropped on
# exit. sqlx-cli (0.9, postgres + rustls) is installed with cargo if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

check=()
case "${1:-}" in
  --check) check=(--check) ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

: "${DATABASE_URL:?DATABASE_URL must name the PostgreSQL server (run through scripts/with-services.sh)}"

if ! cargo sqlx --version 2>/dev/null | grep -q ' 0\.9\.'; then
  echo "[sqlx] installing sqlx-cli 0.9" >&2
  # Its own target directory: the workspace's is keyed to the workspace's dependency set.
  CARGO_TARGET_DIR="${HOME}/.cache/sqlx-cli-target" cargo install sqlx-cli --version '^0.9' \
    --locked --no-default-features --features postgres,rustls
fi

server="${DATABASE_URL%/*}"
query=""
case "$DATABASE_URL" in *\?*) query="?${DATABASE_URL#*\?}" ;; esac
scratch="${server}/eam_sqlx_$$${query}"
cleanup() { cargo sqlx database drop -y --database-url "$scratch" >/dev/null 2>&1 || true; }
trap cleanup EXIT

cargo sqlx database create --database-url "$scratch"
cargo sqlx migrate run --source migrations --database-url "$scratch" >/dev/null
# SQLX_OFFLINE=false: the .cargo/config.toml default would otherwise keep the macros offline.
SQLX_OFFLINE=false DATABASE_URL="$scratch" cargo sqlx prepare --workspace "${check[@]}"
