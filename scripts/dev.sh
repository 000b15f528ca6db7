#!/usr/bin/env bash
# `make dev`: the whole helpdesk on embedded defaults — FerretDB 2 on PostgreSQL, the loopback mail stack, demo users and
# sample emails, the daemon and the web panel. Ctrl-C stops everything it started.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=.venv/bin/python
WEB_PORT=${WEB_PORT:-5000}

# Local secrets, generated once, kept out of the repo (.cache is ignored).
mkdir -p .cache
if [ ! -s .cache/dev-secrets.env ]; then
  # umask only in this subshell: a process-wide 077 left Dovecot's folders unreadable by its own users
  (umask 077; printf 'export SECRET_KEY=%s\nexport JWT_SECRET_KEY=%s\n' \
    "$($PY -c 'import secrets; print(secrets.token_urlsafe(32))')" \
    "$($PY -c 'import secrets; print(secrets.token_urlsafe(32))')" >.cache/dev-secrets.env)
fi
# shellcheck disable=SC1091
source .cache/dev-secrets.env

# Embedded defaults: these win over .env so `make dev` always runs self-contained.
export DB_PORT=${DB_PORT:-27018}
export MONGO_URI=mongodb://127.0.0.1:$DB_PORT/helpdesk
export IMAP_HOST=127.0.0.1 IMAP_PORT=10143 IMAP_USER=support@example.test IMAP_PASSWORD=password IMAP_SECURITY=starttls
export IMAP_VERIFY_TLS=false
export MAIL_SERVER=127.0.0.1 MAIL_PORT=10025 MAIL_USE_TLS=false MAIL_USE_SSL=false
export MAIL_DEFAULT_SENDER=support@example.test SUPPORT_ADDRESS=support@example.test
export APP_URL=http://127.0.0.1:$WEB_PORT
export TRIAGE_PROVIDER=${TRIAGE_PROVIDER:-local} POLL_INTERVAL_SECONDS=${POLL_INTERVAL_SECONDS:-10}
export MODEL_DIR=$ROOT/.cache/triage-model

pids=()
cleanup() {
  trap - INT TERM EXIT
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
MAIL_SINK_DIR=$(sed -n 's/.*MAIL_SINK_DIR=\([^ ]*\).*/\1/p' "$(bash scripts/mail.sh env)")
.venv/bin/flask --app webadmin demo seed
$PY scripts/demo_emails.py --port 10026

mkdir -p .cache/logs
$PY run_daemon.py >>.cache/logs/daemon.log 2>&1 &
pids+=($!)
$PY run_web.py --host 127.0.0.1 --port "$WEB_PORT" >>.cache/logs/web.log 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  $PY -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$WEB_PORT/healthz', timeout=1)" \
    2>/dev/null && break
  sleep 0.2
done

cat <<EOM

  Helpdesk running.
  Panel:        http://127.0.0.1:$WEB_PORT/            (admin: http://127.0.0.1:$WEB_PORT/admin/)
  Logins:       admin@example.test / demo-password-123            (admin)
                billing@example.test, network@example.test, data@example.test / demo-password-123 (moderators)
  Send email:   SMTP 127.0.0.1:10026 to support@example.test   (e.g. $PY scripts/demo_emails.py --port 10026)
  Sent mail:    $MAIL_SINK_DIR/new/   (acknowledgements, replies, notifications)
  Logs:         .cache/logs/daemon.log  .cache/logs/web.log
  Ctrl-C stops everything.
EOM
wait -n "${pids[@]}" || true
echo "a process exited; see .cache/logs/"
