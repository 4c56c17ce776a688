#!/usr/bin/env bash
# Installs the database runtime tenantforge needs on a Debian machine:
# PostgreSQL (Debian's packages), pgvector and TimescaleDB (built from Debian
# source packages, as bookworm packages neither). Idempotent: every step
# first checks whether its result is already there, and says what it did.
#
# Versions: TimescaleDB comes from trixie (2.19.x, the last line that supports
# PostgreSQL 15). pgvector comes from the newest source package Debian carries
# (trixie, trixie-backports, testing, unstable) and must be at least
# PGVECTOR_MIN: 0.8.2 fixed a buffer overflow in parallel HNSW builds, 0.8.3
# possible index corruption when vacuuming HNSW, 0.8.4 a "graph not repaired"
# error. An older build found here is replaced (databases pick the new version
# up with ALTER EXTENSION vector UPDATE, which the service runs at start-up).
#
# TimescaleDB is built with the patches in patches/timescaledb-<version>-*.diff (see
# patches/README.md). A build this script made earlier without the current patches is
# rebuilt; a TimescaleDB installed any other way (a package, another version) is left
# as it is.
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-15}"
PGVECTOR_MIN="${PGVECTOR_MIN:-0.8.7}"
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
PG_CONFIG="${PG_BIN}/pg_config"
say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

docker_hint="Or run the whole stack in Docker instead: 'docker compose up' (image timescale/timescaledb-ha:pg16 ships both extensions)."

ext_dir() { "$PG_CONFIG" --sharedir 2>/dev/null | sed 's|$|/extension|'; }
have_server() { [ -x "${PG_BIN}/postgres" ] && [ -x "${PG_BIN}/initdb" ]; }
have_headers() { [ -x "$PG_CONFIG" ] && [ -f "$("$PG_CONFIG" --includedir-server 2>/dev/null)/postgres.h" ]; }
have_ext() { have_server && [ -x "$PG_CONFIG" ] && [ -f "$(ext_dir)/$1.control" ]; }
# The version a fresh CREATE EXTENSION installs: what this build ships.
ext_version() { sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" "$(ext_dir)/$1.control" 2>/dev/null; }
# version_lt A B: A sorts strictly before B (Debian revisions such as -1 compare too).
version_lt() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ]; }
vector_current() { have_ext vector && ! version_lt "$(ext_version vector)" "$PGVECTOR_MIN"; }

# The TimescaleDB version trixie's source package builds, which our patches are made for.
TIMESCALEDB_VERSION="2.19.3"
# Empty when the script runs without its checkout (e.g. piped to bash): then no patches.
patch_dir="$(cd "$(dirname "${BASH_SOURCE[0]:-}")/../patches" 2>/dev/null && pwd || true)"
timescaledb_patches() { [ -n "$patch_dir" ] && ls "$patch_dir"/timescaledb-"${TIMESCALEDB_VERSION}"-*.diff 2>/dev/null || true; }
# What the patches are, so a build records which ones it has.
timescaledb_patch_id() { local p; p=$(timescaledb_patches); [ -n "$p" ] && cat $p | sha256sum | cut -c1-16 || true; }
timescaledb_stamp() { printf '%s/timescaledb.tenantforge-patches' "$("$PG_CONFIG" --pkglibdir)"; }
# Our own build of TimescaleDB, made before the current patches: build it again.
timescaledb_stale() {
  local id
  id=$(timescaledb_patch_id)
  [ -n "$id" ] && have_ext timescaledb || return 1
  [ "$(ext_version timescaledb)" = "$TIMESCALEDB_VERSION" ] || return 1
  # Installed by a package: not ours to replace.
  dpkg -S "$(ext_dir)/timescaledb.control" >/dev/null 2>&1 && return 1
  case "$(cat "$(timescaledb_stamp)" 2>/dev/null)" in "$id" | "unpatched:$id") return 1 ;; esac
  return 0
}
timescaledb_ready() { have_ext timescaledb && ! timescaledb_stale; }

if have_server && vector_current && timescaledb_ready; then
  say "PostgreSQL ${PG_MAJOR}, pgvector $(ext_version vector) and TimescaleDB $(ext_version timescaledb) are installed; nothing to do."
  exit 0
fi

# Anything to install from here on needs Debian and root.
missing=()
have_server || missing+=("postgresql-${PG_MAJOR}")
have_ext vector || missing+=("pgvector")
have_ext timescaledb || missing+=("timescaledb")
if [ ! -f /etc/debian_version ] || [ "$(id -u)" != 0 ]; then
  if [ "${#missing[@]}" = 0 ]; then
    # Only an upgrade is missing: the service runs, and /readyz warns about old pgvector builds.
    vector_current || say "warning: pgvector $(ext_version vector) is older than ${PGVECTOR_MIN}; upgrading it needs Debian and root (or install a newer pgvector yourself)."
    timescaledb_stale && say "warning: TimescaleDB ${TIMESCALEDB_VERSION} was built without the current patches/timescaledb-*.diff (creating hypertables and chunks then slows as tenants grow); rebuilding it needs Debian and root."
    exit 0
  fi
  die "missing: ${missing[*]}. This script installs them on Debian as root only.
Install PostgreSQL ${PG_MAJOR} with the pgvector and TimescaleDB extensions yourself and set DATABASE_URL.
${docker_hint}"
fi

# An upgrade that found nothing newer to fetch is tried again after a day, not on every
# `npm test` (each try costs an apt-get update).
upgrade_stamp=/var/cache/tenantforge/pgvector-upgrade-tried
if have_server && have_ext vector && timescaledb_ready && [ -n "$(find "$upgrade_stamp" -mmin -1440 2>/dev/null)" ]; then
  say "pgvector $(ext_version vector) is older than ${PGVECTOR_MIN}, but no newer source was available at the last try; nothing to do until the daily retry (delete ${upgrade_stamp} to retry now)."
  exit 0
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

if vector_current && timescaledb_ready; then exit 0; fi

apt_install "postgresql-server-dev-${PG_MAJOR}" build-essential cmake dpkg-dev libssl-dev
have_headers || die "postgresql-server-dev-${PG_MAJOR} did not provide server headers."

# Source packages come from Debian's newer suites. The archive URI is taken from
# this machine's own bookworm entry, so no host name is written here.
src_list=/etc/apt/sources.list.d/tenantforge-src.sources
legacy_src_list=/etc/apt/sources.list.d/tenantforge-trixie-src.sources
uri=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)|^Suites: bookworm$/ {print u; exit}' /etc/apt/sources.list.d/debian.sources)
  [ -n "$uri" ] || uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
  uri=$(awk '$1=="deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list)
fi
[ -n "$uri" ] || die "could not find this machine's Debian archive URI in /etc/apt/sources.list{,.d/debian.sources}. ${docker_hint}"
# deb-src only: nothing from these suites is ever installed as a binary package.
src_entry="Types: deb-src
URIs: ${uri}
Suites: trixie trixie-backports testing unstable
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
if [ ! -f "$src_list" ] || [ "$(cat "$src_list")" != "$src_entry" ]; then
  say "adding deb-src entries (trixie, trixie-backports, testing, unstable) from ${uri}"
  printf '%s\n' "$src_entry" >"$src_list"
  # An earlier version of this script listed trixie alone there; one entry per suite.
  rm -f "$legacy_src_list"
  apt_updated=0
fi
apt_update

build_root=$(mktemp -d /tmp/tenantforge-build.XXXXXX)
trap 'rm -rf "$build_root"' EXIT
cd "$build_root"

if ! vector_current; then
  # Every pgvector source package the listed suites carry, newest first (e.g. 0.8.7-1
  # from testing/unstable, 0.8.0-1 from trixie). A mirror may list a version whose files
  # it no longer serves: then the next one down that is still newer than what is here.
  installed=$(have_ext vector && ext_version vector || echo none)
  built=""
  for pkg_version in $(apt-cache showsrc pgvector 2>/dev/null | sed -n 's/^Version: //p' | sort -uVr); do
    upstream=${pkg_version%-*}
    upstream=${upstream#*:}
    if [ "$installed" != none ] && ! version_lt "$installed" "$upstream"; then break; fi
    say "building pgvector ${upstream} from source (installed: ${installed})"
    rm -rf pgvector-*/
    if ! apt-get source -qq "pgvector=${pkg_version}" >/dev/null 2>&1; then
      say "warning: the archive lists pgvector ${pkg_version} but does not serve its files; trying an older one."
      continue
    fi
    (cd pgvector-*/ && make -s PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null && make -s PG_CONFIG="$PG_CONFIG" install >/dev/null)
    [ "$(ext_version vector)" = "$upstream" ] || die "pgvector ${upstream} built but $(ext_dir)/vector.control says $(ext_version vector)."
    built=$upstream
    break
  done
  if [ -n "$built" ]; then
    say "pgvector ${built} installed."
  elif have_ext vector; then
    say "warning: no pgvector newer than ${installed} could be fetched from Debian's sources; keeping ${installed} (wanted ${PGVECTOR_MIN}; /readyz warns below 0.8.3)."
    mkdir -p "$(dirname "$upgrade_stamp")" && touch "$upgrade_stamp"
  else
    die "no pgvector source package could be fetched (apt-cache showsrc pgvector). ${docker_hint}"
  fi
  have_ext vector && version_lt "$(ext_version vector)" "$PGVECTOR_MIN" && say "warning: pgvector $(ext_version vector) is older than ${PGVECTOR_MIN}."
else
  say "pgvector $(ext_version vector) is installed."
fi

if ! timescaledb_ready; then
  say "building TimescaleDB (Apache-2 edition) from source"
  # trixie's 2.19.x: later TimescaleDB releases no longer build against PostgreSQL 15.
  apt-get source -qq timescaledb/trixie >/dev/null 2>&1 || die "apt-get source timescaledb/trixie failed."
  patch_id=$(timescaledb_patch_id)
  applied=1
  for p in $(timescaledb_patches); do
    # All or nothing: a patch that no longer applies (a newer source) leaves the tree as it came.
    if (cd timescaledb-*/ && patch -p1 --dry-run --fuzz=0 --silent <"$p" >/dev/null); then
      (cd timescaledb-*/ && patch -p1 --fuzz=0 --silent <"$p")
      say "applied $(basename "$p")"
    else
      applied=0
      say "warning: $(basename "$p") does not apply to this TimescaleDB source; building it without."
    fi
  done
  stage="$build_root/stage"
  (cd timescaledb-*/ && ./bootstrap -DPG_CONFIG="$PG_CONFIG" -DAPACHE_ONLY=ON -DREGRESS_CHECKS=OFF \
      -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DLINTER=OFF >/dev/null \
    && make -s -C build -j"$(nproc)" install DESTDIR="$stage" >/dev/null)
  # Each file goes into place by a rename: a server running with the old library keeps
  # the copy it mapped, where writing over it in place could crash it.
  (cd "$stage" && find . -type f) | while read -r f; do
    dest="/${f#./}"
    mkdir -p "$(dirname "$dest")"
    { cp "$stage/$f" "$dest.tenantforge-new" && mv -f "$dest.tenantforge-new" "$dest"; } || exit 1
  done
  have_ext timescaledb || die "TimescaleDB built but timescaledb.control is not in $(ext_dir)."
  if [ -n "$patch_id" ]; then
    if [ "$applied" = 1 ]; then echo "$patch_id"; else echo "unpatched:$patch_id"; fi >"$(timescaledb_stamp)"
  fi
  say "TimescaleDB installed."
else
  say "TimescaleDB is installed."
fi
say "done."
