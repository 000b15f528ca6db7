#!/usr/bin/env bash
# Build FerretDB v1.24.2 (SQLite backend) once into .cache/bin/, with one fix (see docs/db-compat.md).
# `go install ...@v1.24.2` builds a binary that panics at start (it expects build/version/version.txt,
# which the module zip lacks), so we build from a writable copy of the module with that file added.
#
# The fix: v1.24.2 pushes an `_id` equality down to SQLite as `_ferretdb_sjson->'$._id' = ?`, but builds
# the `_id_` unique index on `_ferretdb_sjson->"_id"`. SQLite matches index expressions by their text,
# so it never used the index: every find, update and delete by `_id` scanned the whole table (EXPLAIN:
# "SCAN"; 60-130 ms per lookup at 10,000 tickets). Spelling the query expression like the index
# (EXPLAIN: "SEARCH ... USING INDEX ..._id_") brings that to about 0.5 ms. Nothing else changes.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=v1.24.2
BIN="$ROOT/.cache/bin/ferretdb-$VERSION-idindex"
if [ -x "$BIN" ] && [[ "$("$BIN" --version 2>&1)" == *"version: $VERSION"* ]]; then exit 0; fi
command -v go >/dev/null || { echo "build-ferretdb: Go is required (https://go.dev/dl)" >&2; exit 1; }
echo "building FerretDB $VERSION (one time, about a minute)..."
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
SRC=$(go mod download -json "github.com/FerretDB/FerretDB@$VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
WORK="$ROOT/.cache/ferretdb-src"
mkdir -p "$ROOT/.cache/bin"
rm -rf "$WORK"; cp -r "$SRC" "$WORK"; chmod -R u+w "$WORK"
echo "$VERSION" > "$WORK/build/version/version.txt"
META="$WORK/internal/backends/sqlite/metadata/metadata.go"
grep -q "IDColumn = DefaultColumn + \"->'\$._id'\"" "$META" || { echo "build-ferretdb: _id fix no longer applies" >&2; exit 1; }
sed -i "s|IDColumn = DefaultColumn + \"->'\$._id'\"|IDColumn = DefaultColumn + \`->\"_id\"\`|" "$META"
(cd "$WORK" && go build -trimpath -o "$BIN" ./cmd/ferretdb)
rm -rf "$WORK"
echo "built $("$BIN" --version 2>&1 | sed -n 1p) (with the _id index fix)"
