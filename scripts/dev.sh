#!/usr/bin/env bash
# `make dev`: the whole helpdesk on embedded defaults — FerretDB 2 on PostgreSQL, the loopback mail stack,
# demo users and sample emails, the daemon and the web panel. Ctrl-C stops everything it started.
# Every port is a variable (below); a busy one stops the start with one line naming it. DEV_DIR (default
# .cache) holds the database, secrets, model and logs, so a second copy can run beside the first.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=.venv/bin/python
DEV_DIR=${DEV_DIR:-$ROOT/.cache}
export WEB_PORT=${WEB_PORT:-5000} DB_PORT=${DB_PORT:-27018}
export DB_PG_PORT=${DB_PG_PORT:-$((DB_PORT + 27000))}
export IMAP_PORT=${IMAP_PORT:-10143} IMAPS_PORT=${IMAPS_PORT:-10993} LMTP_PORT=${LMTP_PORT:-10024}
export SMTP_IN_PORT=${SMTP_IN_PORT:-10026} SINK_PORT=${SINK_PORT:-10025}
export DB_DIR=$DEV_DIR/db
# The mail stack lives under /tmp (Dovecot's users must reach it): mail.sh's default, or one per DEV_DIR.
if [ -z "${MAIL_DIR:-}" ] && [ "$DEV_DIR" != "$ROOT/.cache" ]; then
  MAIL_DIR=/tmp/helpdesk-mail-$(printf %s "$DEV_DIR" | md5sum | cut -c1-8)
fi
MAIL_DIR=${MAIL_DIR:-/tmp/helpdesk-mail-$(printf %s "$ROOT" | md5sum | cut -c1-8)}
export MAIL_DIR

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for var in WEB_PORT DB_PORT DB_PG_PORT IMAP_PORT IMAPS_PORT LMTP_PORT SMTP_IN_PORT SINK_PORT; do
  if port_busy "${!var}"; then
    echo "make dev: port ${!var} is already in use (another copy running? 'make stop' stops ours): set $var to a free port" >&2
    exit 1
  fi
done

# Local secrets, generated once, kept out of the repo (DEV_DIR is ignored by git).
mkdir -p "$DEV_DIR/logs"
if [ ! -s "$DEV_DIR/dev-secrets.env" ]; then
  # umask only in this subshell: a process-wide 077 left Dovecot's folders unreadable by its own users
  (umask 077; printf 'export SECRET_KEY=%s\nexport JWT_SECRET_KEY=%s\n' \
    "$($PY -c 'import secrets; print(secrets.token_urlsafe(32))')" \
    "$($PY -c 'import secrets; print(secrets.token_urlsafe(32))')" >"$DEV_DIR/dev-secrets.env")
fi
# shellcheck disable=SC1091
source "$DEV_DIR/dev-secrets.env"

# Embedded defaults: these win over .env so `make dev` always runs self-contained.
export MONGO_URI=mongodb://127.0.0.1:$DB_PORT/helpdesk
export IMAP_HOST=127.0.0.1 IMAP_USER=support@example.test IMAP_PASSWORD=password IMAP_SECURITY=starttls
export IMAP_VERIFY_TLS=false
export MAIL_SERVER=127.0.0.1 MAIL_PORT=$SINK_PORT MAIL_USE_TLS=false MAIL_USE_SSL=false
export MAIL_DEFAULT_SENDER=support@example.test SUPPORT_ADDRESS=support@example.test
export APP_URL=http://127.0.0.1:$WEB_PORT
export TRIAGE_PROVIDER=${TRIAGE_PROVIDER:-local} POLL_INTERVAL_SECONDS=${POLL_INTERVAL_SECONDS:-10}
export MODEL_DIR=$DEV_DIR/triage-model

pids=()
cleanup() {
  trap - EXIT
  trap '' INT TERM  # a second Ctrl-C must not cut the cleanup short and leave servers running
  echo; echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  bash scripts/mail.sh stop >/dev/null
  bash scripts/db.sh stop >/dev/null
  echo "stopped: nothing left running"
  exit 0
}
trap cleanup INT TERM EXIT

bash scripts/db.sh start
bash scripts/mail.sh start
MAIL_SINK_DIR=$MAIL_DIR/data/sink
.venv/bin/flask --app webadmin demo seed
$PY scripts/demo_emails.py --port "$SMTP_IN_PORT"

$PY run_daemon.py >>"$DEV_DIR/logs/daemon.log" 2>&1 &
pids+=($!)
$PY run_web.py --host 127.0.0.1 --port "$WEB_PORT" >>"$DEV_DIR/logs/web.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do
  $PY -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$WEB_PORT/healthz', timeout=1)" \
    2>/dev/null && break
  sleep 0.2
done

cat <<EOM

  Helpdesk running.
  Panel:        http://127.0.0.1:$WEB_PORT/            (admin: http://127.0.0.1:$WEB_PORT/admin/)
  Logins:       admin@example.test / demo-password-123            (admin)
                billing@example.test, network@example.test, data@example.test / demo-password-123 (moderators)
  Send email:   SMTP 127.0.0.1:$SMTP_IN_PORT to support@example.test   (e.g. $PY scripts/demo_emails.py --port $SMTP_IN_PORT)
  Sent mail:    $MAIL_SINK_DIR/new/   (acknowledgements, replies, notifications)
  Logs:         $DEV_DIR/logs/daemon.log  $DEV_DIR/logs/web.log
  Ctrl-C stops everything.
EOM
wait -n "${pids[@]}" || true
echo "a process exited; see $DEV_DIR/logs/"
