#!/usr/bin/env bash
# Runs the whole engine (see scripts/engine.ts --help): installs what is missing, then starts a
# local nats-server (unless NATS_URL is set) and the services. Ctrl-C stops everything.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# With NATS_URL set no nats-server is started, so none needs to be installed.
[[ -n "${NATS_URL:-}" ]] && export BOOTSTRAP_SKIP_NATS=1
# The console needs no browser on this machine: Chromium is for the browser tests only.
export BOOTSTRAP_SKIP_CHROMIUM=1
# shellcheck source=bootstrap.sh
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec node --import tsx scripts/engine.ts "$@"
