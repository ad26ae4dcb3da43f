#!/usr/bin/env bash
# Installs npm dependencies when node_modules is missing or older than the lock file. npm brings
# Node 24 itself (the `node` devDependency), so a machine with an older Node still runs on 24.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.install-stamp
if [ ! -d node_modules ]; then
  echo "[install] npm ci (fresh checkout)"
  npm ci --no-audit --no-fund
  touch "$stamp"
elif [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  # Incremental: never wipe a node_modules that other processes may be using.
  echo "[install] npm install (package.json or lock changed)"
  npm install --no-audit --no-fund
  touch "$stamp"
fi
