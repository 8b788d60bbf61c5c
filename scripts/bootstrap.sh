#!/usr/bin/env bash
# Makes a fresh clone ready: a pinned pnpm (project-local when none is on PATH), the
# dependencies from the lockfile, a nats-server >= 2.11 and (for the browser tests, unless
# BOOTSTRAP_SKIP_CHROMIUM=1) Debian's chromium. Sourced by start.sh and test.sh; exports PNPM (the
# pnpm command to use), NATS_SERVER_BIN and CHROMIUM_BIN.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PNPM_VERSION="$(sed -n 's/.*"packageManager": *"pnpm@\([^"]*\)".*/\1/p' "$ROOT/package.json")"

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if ((node_major < 20)); then
  echo "bootstrap: Node.js 20 or later is needed (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

if command -v pnpm >/dev/null 2>&1 && [[ "$(pnpm --version 2>/dev/null)" == "$PNPM_VERSION" ]]; then
  PNPM=pnpm
else
  # corepack's signature check fails on Node 20 against the registry's current keys, so
  # pnpm is installed with npm into the project's ignored cache instead of globally.
  local_pnpm="$ROOT/.cache/pnpm/node_modules/.bin/pnpm"
  if [[ ! -x "$local_pnpm" ]] || [[ "$("$local_pnpm" --version 2>/dev/null)" != "$PNPM_VERSION" ]]; then
    echo "bootstrap: installing pnpm@$PNPM_VERSION into .cache/pnpm" >&2
    npm install --silent --no-audit --no-fund --prefix "$ROOT/.cache/pnpm" "pnpm@$PNPM_VERSION" >&2
  fi
  PNPM="$local_pnpm"
fi
export PNPM

if [[ "${BOOTSTRAP_SKIP_INSTALL:-}" != "1" ]]; then
  (cd "$ROOT" && "$PNPM" install --frozen-lockfile --reporter=append-only >&2)
fi

if [[ "${BOOTSTRAP_SKIP_NATS:-}" != "1" ]]; then
  NATS_SERVER_BIN="$(bash "$ROOT/scripts/nats-server.sh")"
  export NATS_SERVER_BIN
fi

if [[ "${BOOTSTRAP_SKIP_CHROMIUM:-}" != "1" ]]; then
  CHROMIUM_BIN="$(bash "$ROOT/scripts/chromium.sh")"
  export CHROMIUM_BIN
fi
