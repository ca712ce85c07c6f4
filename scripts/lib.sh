# Shared helpers for Tern's scripts. Source it: . "$(dirname "$0")/lib.sh"
# Everything here is idempotent: it installs only what is missing.

TERN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export TERN_ROOT

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
# stop_pids PID...: ends the processes this script started (by PID only) and reaps them.
stop_pids() {
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# need_apt PKG... : install Debian packages that are not installed yet. Services that the
# packages ship (coturn's turnserver) must not start: policy-rc.d refuses every start.
need_apt() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    TERN_POLICY_RC=1
  fi
  if [ -z "${TERN_APT_UPDATED:-}" ]; then apt-get update -qq || true; TERN_APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
  [ -n "${TERN_POLICY_RC:-}" ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

# need_cargo_tool BIN CRATE [ARGS...] : cargo install CRATE if BIN is not on PATH.
need_cargo_tool() {
  local bin="$1" crate="$2"; shift 2
  command -v "$bin" >/dev/null 2>&1 && return 0
  log "cargo install $crate"
  cargo install --locked -q "$crate" "$@" || die "cargo install $crate failed"
}

# free_port : an unused TCP+UDP port on loopback (best effort).
free_port() {
  python3 - <<'PY'
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        u.close(); s.close()
PY
}
