# tern-sidecar: the Rust tests (unit, real-socket scenarios, fuzz-corpus replay), the relay
# accepting the sidecar's credentials (a real Allocate on tern-relay, and on coturn as the
# reference), the seed's socket.io flow with the real socket.io-client from npm, and the
# screen-cast demo end to end in headless Chromium, relay only through tern-relay.
. "$(dirname "$0")/../lib.sh"
set -euo pipefail
cd "$TERN_ROOT"

need_apt chromium coturn ca-certificates
command -v node >/dev/null && command -v npm >/dev/null || need_apt nodejs npm

log "sidecar: building tern-sidecar and tern-relay"
cargo build --locked -q -p tern-sidecar -p tern-relay
SIDECAR="$TERN_ROOT/target/debug/tern-sidecar"
RELAY="$TERN_ROOT/target/debug/tern-relay"

log "sidecar: Rust tests"
timeout 600 cargo test --locked -q -p tern-sidecar

log "sidecar: the relay accepts the sidecar's credentials (tern-relay)"
TERN_RELAY_BIN="$RELAY" timeout 120 cargo test --locked -q -p tern-sidecar --test relay -- --ignored

log "sidecar: the same credentials on coturn (the reference TURN REST implementation)"
# coturn needs its CLI, TLS and DTLS listeners off to run unprivileged beside other tests.
TERN_RELAY_BIN="$(command -v turnserver)" TERN_RELAY_EXTRA_ARGS="--no-cli --no-tls --no-dtls" \
  timeout 120 cargo test --locked -q -p tern-sidecar --test relay -- --ignored

log "sidecar: npm packages for the Node tests (socket.io-client, playwright-core)"
(cd sidecar/tests/node && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 300 npm ci --no-audit --no-fund --silent)

log "sidecar: the seed's socket.io flow with socket.io-client"
TERN_SIDECAR_BIN="$SIDECAR" timeout 120 node --test sidecar/tests/node/seed_flow.test.mjs

log "sidecar: screen-cast end to end in headless Chromium through tern-relay"
TERN_SIDECAR_BIN="$SIDECAR" TERN_RELAY_BIN="$RELAY" CHROMIUM=/usr/bin/chromium \
  timeout 180 node --test sidecar/tests/node/e2e_cast.test.mjs
