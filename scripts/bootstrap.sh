#!/usr/bin/env bash
# Install everything the helpdesk and its tests need, idempotently:
# the Python venv from requirements.lock, Dovecot and Chromium from Debian, FerretDB built once.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PYTHON_BIN=${PYTHON_BIN:-python3}

if [ ! -x .venv/bin/python ]; then
  "$PYTHON_BIN" -m venv .venv
fi
stamp=.venv/.lock-$(md5sum requirements.lock | cut -c1-12)
if [ ! -e "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.lock
  rm -f .venv/.lock-*; touch "$stamp"
fi

missing=()
[ -x /usr/lib/dovecot/imap ] && [ -x /usr/lib/dovecot/lmtp ] || missing+=(dovecot-core dovecot-imapd dovecot-lmtpd)
command -v openssl >/dev/null || missing+=(openssl)
if [ "${WITH_BROWSER:-1}" = 1 ] && [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "bootstrap: need root to apt-get install ${missing[*]}" >&2; exit 1; }
  echo "installing from Debian: ${missing[*]}"
  # keep the dovecot package from starting a system-wide server on 0.0.0.0:143
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

bash scripts/build-db.sh
