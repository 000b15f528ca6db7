#!/usr/bin/env bash
# `make bench`: run every benchmark under bench/ (each starts the servers it needs on its own ports) and
# print its figures. BENCH=name runs one (e.g. BENCH=ingest_throughput make bench).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
status=0
for script in bench/*.py; do
  name=$(basename "$script" .py)
  case "$name" in *_stack|*_support|seed|__init__) continue ;; esac
  [ -n "${BENCH:-}" ] && [ "$BENCH" != "$name" ] && continue
  echo "=== $name"
  .venv/bin/python "$script" || { echo "!!! $name failed"; status=1; }
done
exit $status
