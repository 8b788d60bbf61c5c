#!/usr/bin/env bash
# Finds the Chromium the browser tests drive (playwright-core, which ships no browser) and prints
# its path on stdout; installs Debian's `chromium` package when it is missing (Debian/Ubuntu).
#
#   bash scripts/chromium.sh            # print the path (install if needed)
#   bash scripts/chromium.sh --check    # print the path, never install (exit 1 if none)
#
# Order: $CHROMIUM_BIN, then /usr/bin/chromium (what the package installs). apt-get runs as
# root, or through sudo when that needs no password; otherwise the script says what to run.
set -euo pipefail

BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"
log() { echo "chromium.sh: $*" >&2; }

if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi
if [[ -n "${CHROMIUM_BIN:-}" ]]; then
  log "CHROMIUM_BIN=$CHROMIUM_BIN is not an executable file"
  exit 1
fi
if [[ "${1:-}" == "--check" ]]; then
  log "no Chromium at $BIN"
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  log "no Chromium at $BIN and no apt-get: install Chromium and set CHROMIUM_BIN to its binary"
  exit 1
fi
as_root=()
if [[ "$(id -u)" != "0" ]]; then
  if sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    log "no Chromium at $BIN: run \`sudo apt-get install -y chromium\` (or set CHROMIUM_BIN)"
    exit 1
  fi
fi
log "installing Debian's chromium package (for the browser tests)"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
if [[ ! -x "$BIN" ]]; then
  log "apt-get installed chromium, but $BIN is not there"
  exit 1
fi
echo "$BIN"
