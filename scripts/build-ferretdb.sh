#!/usr/bin/env bash
# Build FerretDB v1.24.2 (SQLite backend) once into .cache/bin/ferretdb.
# `go install ...@v1.24.2` builds a binary that panics at start (it expects build/version/version.txt,
# which the module zip lacks), so we build from a writable copy of the module with that file added.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=v1.24.2
BIN="$ROOT/.cache/bin/ferretdb"
if [ -x "$BIN" ] && [[ "$("$BIN" --version 2>&1)" == *"version: $VERSION"* ]]; then exit 0; fi
command -v go >/dev/null || { echo "build-ferretdb: Go is required (https://go.dev/dl)" >&2; exit 1; }
echo "building FerretDB $VERSION (one time, about a minute)..."
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
SRC=$(go mod download -json "github.com/FerretDB/FerretDB@$VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
WORK="$ROOT/.cache/ferretdb-src"
mkdir -p "$ROOT/.cache/bin"
rm -rf "$WORK"; cp -r "$SRC" "$WORK"; chmod -R u+w "$WORK"
echo "$VERSION" > "$WORK/build/version/version.txt"
(cd "$WORK" && go build -trimpath -o "$BIN" ./cmd/ferretdb)
rm -rf "$WORK"
echo "built $("$BIN" --version 2>&1 | sed -n 1p)"
