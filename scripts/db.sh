#!/usr/bin/env bash
# Embedded MongoDB-compatible server: FerretDB v1.24.2 over SQLite on 127.0.0.1.
#   scripts/db.sh start   build once if needed, start (idempotent), wait for ping
#   scripts/db.sh stop    stop by PID (idempotent)
#   scripts/db.sh purge   stop and delete the data
# DB_DIR (default .cache/db) and DB_PORT (default 27018) may be overridden.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DB_DIR=${DB_DIR:-$ROOT/.cache/db}
DB_PORT=${DB_PORT:-27018}
PIDFILE="$DB_DIR/ferretdb.pid"
PY=${PYTHON:-$ROOT/.venv/bin/python}

alive() { local pid st; [ -s "$PIDFILE" ] || return 1; pid=$(cat "$PIDFILE")
  st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ]; }

case "${1:-start}" in
start)
  bash "$ROOT/scripts/build-ferretdb.sh"
  mkdir -p "$DB_DIR/data" "$DB_DIR/state"
  if alive; then echo "ferretdb already running on 127.0.0.1:$DB_PORT (pid $(cat "$PIDFILE"))"; exit 0; fi
  setsid "$ROOT/.cache/bin/ferretdb-v1.24.2-idindex" --handler=sqlite --sqlite-url="file:$DB_DIR/data/" \
    --listen-addr="127.0.0.1:$DB_PORT" --state-dir="$DB_DIR/state" --telemetry=disable \
    --log-level=warn --debug-addr=- </dev/null >>"$DB_DIR/ferretdb.log" 2>&1 &
  echo $! >"$PIDFILE"
  "$PY" - "$DB_PORT" <<'PYEOF'
import sys, time, pymongo
deadline = time.time() + 30
while True:
    try:
        pymongo.MongoClient(f"mongodb://127.0.0.1:{sys.argv[1]}/", serverSelectionTimeoutMS=500).admin.command("ping")
        break
    except Exception as exc:
        if time.time() > deadline:
            sys.exit(f"ferretdb did not answer ping: {exc}")
        time.sleep(0.1)
PYEOF
  echo "ferretdb ready on 127.0.0.1:$DB_PORT (data in $DB_DIR/data)"
  ;;
stop|purge)
  if alive; then
    pid=$(cat "$PIDFILE"); kill -TERM "$pid"
    for _ in $(seq 1 100); do alive || break; sleep 0.05; done
    alive && kill -KILL "$pid"
    echo "ferretdb stopped"
  fi
  rm -f "$PIDFILE"
  [ "$1" = purge ] && rm -rf "$DB_DIR/data" "$DB_DIR/state" && echo "ferretdb data purged"
  exit 0
  ;;
*) echo "usage: scripts/db.sh start|stop|purge" >&2; exit 2 ;;
esac
