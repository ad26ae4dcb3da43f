#!/usr/bin/env bash
# The full test suite: build, lint (module boundaries included), type check, then every project's
# tests against real NATS JetStream and a real MongoDB wire-protocol server. Prints timings.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$1" "$(( $(date +%s) - t0 ))"; }
step "node $(node -v), go $(go env GOVERSION 2>/dev/null || echo missing)"
step build
npm run -s build
step lint
npx nx run-many -t lint --outputStyle=static
step typecheck
npx tsc -p tsconfig.json --noEmit
step test
# One project at a time: integration tests start their own servers and the machine may have 2 cores.
npx nx run-many -t test --parallel=1 --outputStyle=static
step "done in $(( $(date +%s) - t0 ))s"
