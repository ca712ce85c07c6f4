# shellcheck shell=bash
# A real browser through tern-relay: Debian's Chromium, headless, driven by playwright-core
# (relay/server/tests/browser, a node project with a committed lockfile). Every *.test.mjs there
# runs under node's test runner; each test file starts its own relay on free loopback ports.
. "$(dirname "$0")/../lib.sh"
set -euo pipefail
cd "$TERN_ROOT"

need_apt chromium
command -v node >/dev/null && command -v npm >/dev/null || need_apt nodejs npm

dir="relay/server/tests/browser"
# npm ci only when the lockfile changed since the last install (it wipes node_modules).
stamp="$dir/node_modules/.tern-lock-sha256"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi

cargo build --locked -q -p tern-relay
export TERN_RELAY_BIN="$TERN_ROOT/target/debug/tern-relay"
export TERN_CHROMIUM="${TERN_CHROMIUM:-$(command -v chromium)}"
cd "$dir"
timeout 300 node --test --test-concurrency=1
