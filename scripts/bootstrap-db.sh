#!/usr/bin/env bash
# Installs the database runtime tenantforge needs on a Debian machine:
# PostgreSQL (Debian's packages), pgvector and TimescaleDB (built from Debian
# trixie source packages, as bookworm packages neither). Idempotent: every step
# first checks whether its result is already there, and says what it did.
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-15}"
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
PG_CONFIG="${PG_BIN}/pg_config"
say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

docker_hint="Or run the whole stack in Docker instead: 'docker compose up' (image timescale/timescaledb-ha:pg16 ships both extensions)."

ext_dir() { "$PG_CONFIG" --sharedir 2>/dev/null | sed 's|$|/extension|'; }
have_server() { [ -x "${PG_BIN}/postgres" ] && [ -x "${PG_BIN}/initdb" ]; }
have_headers() { [ -x "$PG_CONFIG" ] && [ -f "$("$PG_CONFIG" --includedir-server 2>/dev/null)/postgres.h" ]; }
have_ext() { have_server && [ -x "$PG_CONFIG" ] && [ -f "$(ext_dir)/$1.control" ]; }

if have_server && have_ext vector && have_ext timescaledb; then
  say "PostgreSQL ${PG_MAJOR}, pgvector and TimescaleDB are installed; nothing to do."
  exit 0
fi

# Anything to install from here on needs Debian and root.
missing=()
have_server || missing+=("postgresql-${PG_MAJOR}")
have_ext vector || missing+=("pgvector")
have_ext timescaledb || missing+=("timescaledb")
if [ ! -f /etc/debian_version ] || [ "$(id -u)" != 0 ]; then
  die "missing: ${missing[*]}. This script installs them on Debian as root only.
Install PostgreSQL ${PG_MAJOR} with the pgvector and TimescaleDB extensions yourself and set DATABASE_URL.
${docker_hint}"
fi

apt_updated=0
apt_update() { [ "$apt_updated" = 1 ] || { say "apt-get update"; apt-get update -qq; apt_updated=1; }; }
apt_install() {
  local need=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p"); done
  [ "${#need[@]}" = 0 ] && return 0
  apt_update
  say "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

if ! have_server; then
  apt_install "postgresql-${PG_MAJOR}" "postgresql-contrib"
  have_server || die "postgresql-${PG_MAJOR} did not install its server binaries under ${PG_BIN}."
else
  say "PostgreSQL ${PG_MAJOR} server is installed."
fi

if have_ext vector && have_ext timescaledb; then exit 0; fi

apt_install "postgresql-server-dev-${PG_MAJOR}" build-essential cmake dpkg-dev libssl-dev
have_headers || die "postgresql-server-dev-${PG_MAJOR} did not provide server headers."

# Source packages come from Debian trixie. The archive URI is taken from this
# machine's own bookworm entry, so no host name is written here.
src_list=/etc/apt/sources.list.d/tenantforge-trixie-src.sources
if [ ! -f "$src_list" ]; then
  uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)|^Suites: bookworm$/ {print u; exit}' /etc/apt/sources.list.d/debian.sources)
    [ -n "$uri" ] || uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || die "could not find this machine's Debian archive URI in /etc/apt/sources.list{,.d/debian.sources}. ${docker_hint}"
  say "adding deb-src entry for trixie from ${uri}"
  cat >"$src_list" <<SRC
Types: deb-src
URIs: ${uri}
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt_updated=0
fi
apt_update

build_root=$(mktemp -d /tmp/tenantforge-build.XXXXXX)
trap 'rm -rf "$build_root"' EXIT
cd "$build_root"

if ! have_ext vector; then
  say "building pgvector from source"
  apt-get source -qq pgvector >/dev/null 2>&1 || die "apt-get source pgvector failed."
  (cd pgvector-*/ && make -s PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null && make -s PG_CONFIG="$PG_CONFIG" install >/dev/null)
  have_ext vector || die "pgvector built but vector.control is not in $(ext_dir)."
  say "pgvector installed."
else
  say "pgvector is installed."
fi

if ! have_ext timescaledb; then
  say "building TimescaleDB (Apache-2 edition) from source"
  apt-get source -qq timescaledb >/dev/null 2>&1 || die "apt-get source timescaledb failed."
  (cd timescaledb-*/ && ./bootstrap -DPG_CONFIG="$PG_CONFIG" -DAPACHE_ONLY=ON -DREGRESS_CHECKS=OFF \
      -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DLINTER=OFF >/dev/null && make -s -C build -j"$(nproc)" install >/dev/null)
  have_ext timescaledb || die "TimescaleDB built but timescaledb.control is not in $(ext_dir)."
  say "TimescaleDB installed."
else
  say "TimescaleDB is installed."
fi
say "done."
