#!/usr/bin/env bash
# Embedded MongoDB-compatible server: FerretDB v2.7.0 on PostgreSQL 15 + DocumentDB, on 127.0.0.1.
#   scripts/db.sh start   build once if needed, init the cluster once, start both (idempotent), wait for ping
#   scripts/db.sh stop    stop both by PID (idempotent)
#   scripts/db.sh purge   stop and delete the data
#   scripts/db.sh status  exit 0 when both run
#   scripts/db.sh backup FILE    online physical backup of the whole cluster (pg_basebackup, tar.gz) into FILE
#   scripts/db.sh restore FILE   stop both, replace the cluster with FILE's, start both
# The backup is physical because pg_dump leaves out DocumentDB's catalog (documentdb_api_catalog.collections
# and collection_indexes are extension tables not marked for dumping): a logical dump restores the documents
# tables but no collection names pointing at them (docs/db-compat.md).
# DB_DIR (default .cache/db), DB_PORT (FerretDB, default 27018) and DB_PG_PORT (PostgreSQL, default DB_PORT + 27000)
# may be overridden. PostgreSQL refuses to run as root, so the cluster belongs to DB_OS_USER (default postgres).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DB_DIR=${DB_DIR:-$ROOT/.cache/db}
case $DB_DIR in /*) ;; *) DB_DIR=$PWD/$DB_DIR ;; esac  # pg_ctl runs elsewhere: a relative folder would not be found
DB_PORT=${DB_PORT:-27018}
DB_PG_PORT=${DB_PG_PORT:-$((DB_PORT + 27000))}
DB_OS_USER=${DB_OS_USER:-postgres}
PGBIN=/usr/lib/postgresql/15/bin
FERRETDB_BIN="$ROOT/.cache/bin/ferretdb-v2.7.0"
# PostgreSQL (running as DB_OS_USER) must reach its folder: DB_DIR when that user can search its parent,
# else a folder under /tmp named after DB_DIR (e.g. a checkout under /root, which is 0700).
mkdir -p "$(dirname "$DB_DIR")"
PG_HOME=$DB_DIR
if ! runuser -u "$DB_OS_USER" -- test -x "$(dirname "$DB_DIR")" 2>/dev/null && [ "$(id -un)" != "$DB_OS_USER" ]; then
  PG_HOME=/tmp/helpdesk-pg-$(printf %s "$DB_DIR" | md5sum | cut -c1-12)
fi
PGDATA="$PG_HOME/pg"
PGRUN="$PG_HOME/run"
FERRET_PID="$DB_DIR/ferretdb.pid"
PY=${PYTHON:-$ROOT/.venv/bin/python}
die() { echo "db.sh: $*" >&2; exit 1; }

as_db_user() { if [ "$(id -un)" = "$DB_OS_USER" ]; then "$@"; else runuser -u "$DB_OS_USER" -- "$@"; fi; }
alive() { local pid st; [ -s "$1" ] || return 1; pid=$(head -n1 "$1")
  st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ]; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pg_sql() { PGOPTIONS="-c client_min_messages=warning" as_db_user "$PGBIN/psql" -h "$PGRUN" -p "$DB_PG_PORT" -d postgres -qAtX -v ON_ERROR_STOP=1 -c "$1"; }

init_cluster() {
  id "$DB_OS_USER" >/dev/null 2>&1 || die "no OS user '$DB_OS_USER' to own PostgreSQL (set DB_OS_USER to one)"
  mkdir -p "$PGRUN"
  chown "$DB_OS_USER" "$PG_HOME" "$PGRUN" 2>/dev/null || true
  as_db_user test -w "$PG_HOME" || die "$PG_HOME must be writable by $DB_OS_USER (and its parents searchable)"
  as_db_user "$PGBIN/initdb" -D "$PGDATA" -U "$DB_OS_USER" --auth=trust -E UTF8 --locale=C.UTF-8 >"$DB_DIR/initdb.log" 2>&1 \
    || die "initdb failed: see $DB_DIR/initdb.log"
  # The settings DocumentDB's own packaging sets (packaging/10-preload.sh), plus a small footprint.
  cat >>"$PGDATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
shared_preload_libraries = 'pg_cron,pg_documentdb_core,pg_documentdb'
cron.database_name = 'postgres'
documentdb.enableCompact = true
documentdb.enableLetAndCollationForQueryMatch = true
documentdb.enableNowSystemVariable = true
documentdb.enableSortbyIdPushDownToPrimaryKey = true
documentdb.enableSchemaValidation = true
documentdb.enableBypassDocumentValidation = true
documentdb.enableUserCrud = true
documentdb.maxUserLimit = 100
shared_buffers = 256MB
max_connections = 300
fsync = on
EOF
}

start_pg() {
  alive "$PGDATA/postmaster.pid" && return 0
  port_busy "$DB_PG_PORT" && die "port $DB_PG_PORT (PostgreSQL) is already in use: set DB_PG_PORT to a free port"
  as_db_user "$PGBIN/pg_ctl" -D "$PGDATA" -o "-p $DB_PG_PORT -k $PGRUN" -l "$PG_HOME/postgres.log" -w -t 60 start \
    >/dev/null || die "PostgreSQL did not start: see $PG_HOME/postgres.log"
  if [ ! -e "$DB_DIR/extension.done" ]; then
    pg_sql "CREATE EXTENSION IF NOT EXISTS documentdb CASCADE;" || die "CREATE EXTENSION documentdb failed"
    touch "$DB_DIR/extension.done"
  fi
}

start_ferretdb() {
  alive "$FERRET_PID" && return 0
  port_busy "$DB_PORT" && die "port $DB_PORT (FerretDB) is already in use: set DB_PORT to a free port"
  mkdir -p "$DB_DIR/state"
  setsid "$FERRETDB_BIN" --postgresql-url="postgres://$DB_OS_USER@127.0.0.1:$DB_PG_PORT/postgres" \
    --listen-addr="127.0.0.1:$DB_PORT" --no-auth --state-dir="$DB_DIR/state" --telemetry=disable \
    --log-level=warn --debug-addr=- </dev/null >>"$DB_DIR/ferretdb.log" 2>&1 &
  echo $! >"$FERRET_PID"
  "$PY" - "$DB_PORT" "$DB_DIR/ferretdb.log" <<'PYEOF'
import sys, time, pymongo
deadline = time.time() + 30
while True:
    try:
        pymongo.MongoClient(f"mongodb://127.0.0.1:{sys.argv[1]}/", serverSelectionTimeoutMS=500).admin.command("ping")
        break
    except Exception as exc:
        if time.time() > deadline:
            sys.exit(f"db.sh: FerretDB did not answer ping on port {sys.argv[1]}: {exc} (see {sys.argv[2]})")
        time.sleep(0.1)
PYEOF
}

stop_pid() {  # TERM, wait, KILL
  local pidfile=$1 pid; alive "$pidfile" || return 0
  pid=$(head -n1 "$pidfile"); kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 200); do alive "$pidfile" || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}

stop_all() {
  stop_pid "$FERRET_PID"; rm -f "$FERRET_PID"
  if alive "$PGDATA/postmaster.pid"; then
    as_db_user "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 30 stop >/dev/null 2>&1 || stop_pid "$PGDATA/postmaster.pid"
  fi
}

backup() {
  local file=$1
  alive "$PGDATA/postmaster.pid" || die "PostgreSQL is not running: run scripts/db.sh start first"
  # WAL fetched into the tar (-X fetch): the archive alone restores a consistent cluster.
  as_db_user "$PGBIN/pg_basebackup" -h "$PGRUN" -p "$DB_PG_PORT" -U "$DB_OS_USER" -D - -Ft -X fetch -z \
    -c fast >"$file.partial" 2>"$DB_DIR/backup.log" || { rm -f "$file.partial"; die "backup failed: see $DB_DIR/backup.log"; }
  mv "$file.partial" "$file"
  echo "backup written: $file ($(du -h "$file" | cut -f1))"
}

restore() {
  local file=$1 staged="$PG_HOME/pg.restoring"
  [ -s "$file" ] || die "no backup file at $file"
  mkdir -p "$PGRUN"
  rm -rf "$staged"; mkdir -p "$staged"; chown "$DB_OS_USER" "$PG_HOME" "$PGRUN" "$staged" 2>/dev/null || true
  chmod 700 "$staged"
  as_db_user tar -xzf - -C "$staged" <"$file" || { rm -rf "$staged"; die "$file is not a backup made by scripts/db.sh backup"; }
  [ -s "$staged/PG_VERSION" ] || { rm -rf "$staged"; die "$file holds no PostgreSQL cluster"; }
  stop_all
  rm -rf "$PGDATA.replaced"; [ -d "$PGDATA" ] && mv "$PGDATA" "$PGDATA.replaced"
  mv "$staged" "$PGDATA"
  touch "$DB_DIR/extension.done"
  start_pg
  start_ferretdb
  rm -rf "$PGDATA.replaced"
  echo "restored $file into $PGDATA; FerretDB on port $DB_PORT"
}

case "${1:-start}" in
start)
  bash "$ROOT/scripts/build-db.sh"
  mkdir -p "$DB_DIR"
  [ -s "$PGDATA/PG_VERSION" ] || init_cluster
  start_pg
  start_ferretdb
  echo "database ready: mongodb://127.0.0.1:$DB_PORT/ (FerretDB v2.7.0 on PostgreSQL port $DB_PG_PORT, data in $PGDATA)"
  ;;
stop|purge)
  stop_all
  if [ "$1" = purge ]; then rm -rf "$DB_DIR" "$PG_HOME"; echo "database stopped and purged ($DB_DIR)"; else echo "database stopped"; fi
  ;;
status)
  alive "$PGDATA/postmaster.pid" && alive "$FERRET_PID"
  ;;
backup) [ -n "${2:-}" ] || die "usage: scripts/db.sh backup FILE"; backup "$2" ;;
restore) [ -n "${2:-}" ] || die "usage: scripts/db.sh restore FILE"; bash "$ROOT/scripts/build-db.sh"; restore "$2" ;;
*) echo "usage: scripts/db.sh start|stop|purge|status|backup FILE|restore FILE" >&2; exit 2 ;;
esac
