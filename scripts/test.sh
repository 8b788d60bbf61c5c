#!/usr/bin/env bash
# The test suite: lint, type-check, every test (unit, integration against real nats-server
# processes, end-to-end with the services as child processes). Extra arguments go to vitest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bootstrap.sh
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
"$PNPM" run lint
"$PNPM" run typecheck
"$PNPM" exec vitest run "$@"
