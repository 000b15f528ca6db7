#!/usr/bin/env bash
# Build the embedded database once: FerretDB v2.7.0 in front of PostgreSQL 15 with DocumentDB.
#   - Debian packages: PostgreSQL 15 and what the extensions build against (apt-get, root).
#   - pg_cron, pgvector and DocumentDB (pg_documentdb_core, pg_documentdb) from the tarballs in
#     ../shared/vendor/ (checksums checked), installed into Debian's PostgreSQL 15 (CREATE EXTENSION reads there).
#   - FerretDB v2.7.0 from the Go module proxy into .cache/bin/.
# Idempotent: a stamp per part records what was built from which tarball. VENDOR_DIR overrides ../shared/vendor.
set -euo pipefail
shopt -s inherit_errexit  # a die() inside $(...) stops the script, not only the subshell
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENDOR_DIR=${VENDOR_DIR:-$ROOT/../shared/vendor}
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
FERRETDB_VERSION=v2.7.0
FERRETDB_BIN="$ROOT/.cache/bin/ferretdb-$FERRETDB_VERSION"
BUILD="$ROOT/.cache/build"
die() { echo "build-db: $*" >&2; exit 1; }

declare -A SHA256=(
  [documentdb-ferretdb-3f80da90.tar.gz]=840d8902259f2c33fb519c4b1b15dc2535bd0490571137c53bdd2e2b2cf2d469
  [pg_cron-1.6.3.tar.gz]=c525dbe88dc22c2a58fe82565bb9602690e1c05c4ffd3d2ccee971ac52d59904
  [pgvector-0.8.0.tar.gz]=958aa543a05a60c3696f7fc3bc5722be5a1c413b0ee0e1811f898128526b9c8a
)
PACKAGES=(postgresql-15 postgresql-server-dev-15 libbson-dev libintelrdfpmath-dev libpcre2-dev libicu-dev
  libkrb5-dev pkg-config build-essential postgresql-15-postgis-3 postgresql-15-rum)

# --- Debian packages --------------------------------------------------------------------------------
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "need root to apt-get install ${missing[*]} (run as root, or install them first)"
  echo "installing from Debian: ${missing[*]}"
  # keep the postgresql package from starting a system-wide cluster
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || { rm -f /usr/sbin/policy-rc.d; die "apt-get install ${missing[*]} failed: see its output above"; }
  rm -f /usr/sbin/policy-rc.d
fi

# --- PostgreSQL extensions from ../shared/vendor ------------------------------------------------------
PG_LIB=$("$PG_CONFIG" --pkglibdir)
tarball() {  # path of a checked vendor tarball
  local name=$1 path="$VENDOR_DIR/$1"
  [ -r "$path" ] || die "missing $path: the vendored sources live in ../shared/vendor (set VENDOR_DIR to another copy)"
  echo "${SHA256[$name]}  $path" | sha256sum -c --status || die "$path does not match its sha256 in ../shared/vendor/README.md"
  echo "$path"
}
built() { [ -e "$PG_LIB/$1" ] && [ "$(cat "$BUILD/$2.stamp" 2>/dev/null)" = "${SHA256[$2]}" ]; }
unpack() {  # unpack a tarball into a fresh folder under .cache/build; prints the folder
  local name=$1 dir="$BUILD/${1%.tar.gz}"
  local path; path=$(tarball "$name")
  rm -rf "$dir"; mkdir -p "$dir"
  tar -xzf "$path" -C "$dir" --strip-components=1
  echo "$dir"
}
make_ext() {  # make + make install in a folder, against Debian's PostgreSQL 15, no LLVM bitcode
  local dir=$1; shift
  make -C "$dir" -j"$(nproc)" PG_CONFIG="$PG_CONFIG" with_llvm=no "$@" >"$dir.log" 2>&1 \
    && make -C "$dir" install PG_CONFIG="$PG_CONFIG" with_llvm=no "$@" >>"$dir.log" 2>&1 \
    || die "building $(basename "$dir") failed: see $dir.log"
}
mkdir -p "$BUILD"
[ "$(id -u)" = 0 ] || built pg_documentdb.so documentdb-ferretdb-3f80da90.tar.gz \
  || die "need root to install the PostgreSQL extensions into $PG_LIB"

if ! built pg_cron.so pg_cron-1.6.3.tar.gz; then
  echo "building pg_cron 1.6.3..."
  dir=$(unpack pg_cron-1.6.3.tar.gz); make_ext "$dir"
  echo "${SHA256[pg_cron-1.6.3.tar.gz]}" >"$BUILD/pg_cron-1.6.3.tar.gz.stamp"
fi
if ! built vector.so pgvector-0.8.0.tar.gz; then
  echo "building pgvector 0.8.0..."
  dir=$(unpack pgvector-0.8.0.tar.gz); make_ext "$dir" OPTFLAGS=""  # no -march=native: runs on any x86-64
  echo "${SHA256[pgvector-0.8.0.tar.gz]}" >"$BUILD/pgvector-0.8.0.tar.gz.stamp"
fi
if ! built pg_documentdb.so documentdb-ferretdb-3f80da90.tar.gz; then
  echo "building DocumentDB (one time, about 90 s)..."
  dir=$(unpack documentdb-ferretdb-3f80da90.tar.gz)
  # Debian ships the Intel decimal library without a pkg-config file; DocumentDB looks it up by this name.
  mkdir -p "$BUILD/pkgconfig"
  printf 'Name: intelmathlib\nDescription: BID\nVersion: 2.0u2\nCflags: -I/usr/include\nLibs: -l:libbidgcc000.a\n' \
    >"$BUILD/pkgconfig/intelmathlib.pc"
  export PKG_CONFIG_PATH="$BUILD/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  # Debian 12's libbson 1.23 lacks BSON_SUBTYPE_SENSITIVE (added in 1.25, value 0x08).
  copt="-DBSON_SUBTYPE_SENSITIVE=0x08 -Wno-error=switch"
  make_ext "$dir/pg_documentdb_core" COPT="$copt"
  make_ext "$dir/pg_documentdb" COPT="$copt"
  echo "${SHA256[documentdb-ferretdb-3f80da90.tar.gz]}" >"$BUILD/documentdb-ferretdb-3f80da90.tar.gz.stamp"
  rm -rf "$dir"
fi

# --- FerretDB v2 --------------------------------------------------------------------------------------
if [ -x "$FERRETDB_BIN" ] && [[ "$("$FERRETDB_BIN" --version 2>&1)" == *"version: $FERRETDB_VERSION"* ]]; then
  exit 0
fi
command -v go >/dev/null || die "Go is required to build FerretDB $FERRETDB_VERSION (apt-get install golang, or go.dev/dl)"
echo "building FerretDB $FERRETDB_VERSION (one time, about 70 s)..."
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
SRC=$(go mod download -json "github.com/FerretDB/FerretDB/v2@$FERRETDB_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[ -d "$SRC" ] || die "could not download github.com/FerretDB/FerretDB/v2@$FERRETDB_VERSION from the Go module proxy"
WORK="$BUILD/ferretdb-src"
mkdir -p "$ROOT/.cache/bin"
rm -rf "$WORK"; cp -r "$SRC" "$WORK"; chmod -R u+w "$WORK"
# The module zip lacks build/version/version.txt; without it the binary panics at start.
echo "$FERRETDB_VERSION" >"$WORK/build/version/version.txt"
(cd "$WORK" && go build -trimpath -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb) >"$BUILD/ferretdb.log" 2>&1 \
  || die "building FerretDB failed: see $BUILD/ferretdb.log"
mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
rm -rf "$WORK"
echo "built $("$FERRETDB_BIN" --version 2>&1 | sed -n 1p)"
