#!/usr/bin/env bash
# One-time set-up shared by `npm start`, `npm test` and `.ci/run`: Node
# dependencies (when missing or stale) and the database runtime. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=node_modules/.tenantforge-installed
# A changed patch (patches/) needs a clean install too: patch-package applies to pristine packages.
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ] \
  || [ -n "$(find patches -newer "$stamp" -print -quit)" ]; then
  echo "setup: installing Node dependencies"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

# With an external DATABASE_URL the server is somebody else's; nothing to build here.
if [ -z "${DATABASE_URL:-}" ]; then
  bash scripts/bootstrap-db.sh
fi
