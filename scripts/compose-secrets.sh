#!/usr/bin/env bash
# Writes what docker-compose.yml needs and the repository must never hold, into deploy/secrets/
# (git- and docker-ignored) or the directory given:
#
#   bash scripts/compose-secrets.sh [dir]
#
#   broker/auth.conf, broker/<identity>.env   the broker's users and each identity's credentials
#                                             (`pnpm broker-auth`; passwords already there are kept)
#   hook.env                                  FOLLOWUP_HOOK_SECRET, shared by lead-intake and the dispatchers
#   tls/ca.pem, ca-key.pem                    a CA of this deployment (its key stays outside tls/,
#                                             which the nodes mount)
#   tls/server.pem, tls/server-key.pem        the nodes' certificate (nats-1..3, localhost,
#                                             127.0.0.1), for client connections and cluster routes
#
# Run it again at any time: existing files are kept, so a running deployment is not locked out
# (delete tls/ to issue new certificates). Needs node (the repository's install) and openssl.
# FOLLOWUP_QUEUE names the work queue, as for the services.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$ROOT/deploy/secrets}"
DAYS="${TLS_DAYS:-825}"
umask 077
mkdir -p "$DIR/tls"

node --import tsx "$ROOT/packages/service-kit/scripts/broker-auth.ts" "$DIR/broker" >&2

if [[ ! -s "$DIR/hook.env" ]]; then
  echo "FOLLOWUP_HOOK_SECRET=whsec_$(openssl rand -base64 32)" >"$DIR/hook.env"
fi

tls="$DIR/tls"
if [[ ! -s "$tls/ca.pem" ]]; then
  openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days "$DAYS" \
    -keyout "$DIR/ca-key.pem" -out "$tls/ca.pem" -subj "/CN=followup compose CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  rm -f "$tls/server.pem"
fi
if [[ ! -s "$tls/server.pem" ]]; then
  openssl req -newkey rsa:3072 -sha256 -nodes -keyout "$tls/server-key.pem" -out "$tls/server.csr" \
    -subj "/CN=nats" 2>/dev/null
  # serverAuth for clients and the routes a node accepts, clientAuth for the routes it dials.
  printf '%s\n' "subjectAltName=DNS:nats-1,DNS:nats-2,DNS:nats-3,DNS:localhost,IP:127.0.0.1" \
    "extendedKeyUsage=serverAuth,clientAuth" "keyUsage=critical,digitalSignature,keyEncipherment" \
    >"$tls/server.ext"
  openssl x509 -req -sha256 -days "$DAYS" -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$DIR/ca-key.pem" \
    -CAcreateserial -out "$tls/server.pem" -extfile "$tls/server.ext" 2>/dev/null
  rm -f "$tls/server.csr" "$tls/server.ext" "$tls/ca.srl"
fi
# Certificates are public (the services verify the nodes with the CA's); keys stay 0600 (the
# nats image runs as root, which reads them).
chmod 0644 "$tls/ca.pem" "$tls/server.pem"
chmod 0755 "$DIR" "$tls"
echo "compose-secrets: wrote $DIR (broker credentials, hook secret, TLS CA and the nodes' certificate)" >&2
