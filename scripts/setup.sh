#!/usr/bin/env bash
# One-time set-up shared by `npm start`, `npm test` and `.ci/run`: Node
# dependencies (when missing or stale) and the database runtime. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=node_modules/.tenantforge-installed
# A changed package patch (patches/*.patch) needs a clean install too: patch-package
# applies to pristine packages. (patches/*.diff are TimescaleDB's: bootstrap-db.sh's.)
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ] \
  || [ -n "$(find patches -name '*.patch' -newer "$stamp" -print -quit)" ]; then
  # One dependency (zstd-napi, the backups' compression) compiles a native addon at install.
  if ! { command -v g++ && command -v make && command -v python3; } >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "setup: installing a C++ compiler for a native addon (g++, make, python3)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ make python3 >/dev/null
    else
      echo "setup: error: npm ci compiles zstd-napi and needs g++, make and python3; install them (Debian: apt-get install g++ make python3) and run again" >&2
      exit 1
    fi
  fi
  echo "setup: installing Node dependencies"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

# With an external DATABASE_URL the server is somebody else's; nothing to build here.
if [ -z "${DATABASE_URL:-}" ]; then
  bash scripts/bootstrap-db.sh
fi
