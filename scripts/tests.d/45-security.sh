# Secure by default (issue 8): the peer-policy property test with many cases, then the abuse
# tests against a real tern-relay (relay/server/tests/abuse_*.rs): the SSRF matrix and its
# positive controls, amplification (coturn measured alongside), the 401 budget, quotas and the
# port range under churn, descriptor exhaustion, and a garbage flood. The fuzz corpora are
# replayed by 10-unit.sh; scripts/fuzz runs the fuzzers.
#
# The abuse tests run in a network namespace of their own where the machine allows it (as root
# with `unshare --net`, else an unprivileged `unshare --net --map-root-user`): nothing they send
# can leave it, and a private address (10.x) can be put on its loopback for the positive
# controls. Without namespaces, as root, that address is added to `lo` and removed afterwards.
. "$(dirname "$0")/../lib.sh"
set -euo pipefail
cd "$TERN_ROOT"

PRIVATE_IP=10.203.0.1
ABUSE_TESTS=(abuse_ssrf abuse_amplification abuse_quota abuse_fds abuse_flood)

if [ -z "${TERN_SECURITY_INNER:-}" ]; then
  need_apt iproute2 coturn
  # deny(a) == deny(each IPv6 encoding of a) over many random addresses and ports.
  PROPTEST_CASES=20000 cargo test -p relay-proto --lib --locked -q policy::
  # Build everything before entering a namespace without network.
  cargo build -p tern-relay --locked -q
  cargo test -p tern-relay --locked -q --no-run $(printf -- '--test %s ' "${ABUSE_TESTS[@]}") 2>/dev/null
  export TERN_SECURITY_INNER=1
  if [ "$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then
    exec unshare --net bash "$0" "$@"
  elif unshare --net --map-root-user true 2>/dev/null; then
    exec unshare --net --map-root-user bash "$0" "$@"
  fi
  if [ "$(id -u)" = 0 ] && ip addr add "$PRIVATE_IP/32" dev lo 2>/dev/null; then
    log "no network namespace available: $PRIVATE_IP added to lo for the duration"
    trap 'ip addr del "$PRIVATE_IP/32" dev lo 2>/dev/null || true' EXIT
  else
    # A container without namespaces or NET_ADMIN: use an address of the machine's from the
    # default-deny tier (private, shared or documentation ranges).
    tier='^(10|172\.(1[6-9]|2[0-9]|3[01])|192\.168|100\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])|192\.0\.2|198\.51\.100|203\.0\.113|198\.1[89])\.'
    PRIVATE_IP=$(ip -4 -o addr show scope global 2>/dev/null | awk '{sub("/.*", "", $4); print $4}' \
      | grep -E "$tier" | head -1 || true)
    [ -n "$PRIVATE_IP" ] || die "the abuse tests need a network namespace (unshare), root, or a private address"
    log "no network namespace available: using this machine's address $PRIVATE_IP"
  fi
else
  ip link set lo up
  ip addr add "$PRIVATE_IP/32" dev lo
fi

export TERN_TEST_PRIVATE_IP="$PRIVATE_IP"
for t in "${ABUSE_TESTS[@]}"; do
  log "security: $t"
  cargo test -p tern-relay --locked --offline -q --test "$t" -- --ignored --test-threads=1 --nocapture \
    || die "$t failed"
done
