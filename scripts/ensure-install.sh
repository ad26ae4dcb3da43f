#!/usr/bin/env bash
# Installs npm dependencies when node_modules is missing or older than the lock file. npm brings
# Node 24 itself (the `node` devDependency), so a machine with an older Node still runs on 24.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.install-stamp
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  echo "[install] npm ci (node_modules missing or out of date)"
  npm ci --no-audit --no-fund
  touch "$stamp"
fi
