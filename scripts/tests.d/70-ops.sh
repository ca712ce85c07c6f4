# Operations (docs/OPERATIONS.md): the Rust scenarios of relay/server/tests/ops_*.rs, then with
# coturn's own clients: promtool on a scrape under turnutils_uclient traffic, the admin API
# killing a live uclient session, secret rotation and drain under a running call; then the
# systemd units (systemd-analyze verify), the installer and the container entrypoint.
. "$(dirname "$0")/../lib.sh"
set -euo pipefail
cd "$TERN_ROOT"

need_apt coturn prometheus curl
command -v systemd-analyze >/dev/null || need_apt systemd
cargo build --locked -q -p tern-relay -p tern-sidecar
BIN="$TERN_ROOT/target/debug"

tmp="$(mktemp -d)"
pids=()
cleanup() {
  stop_pids "${pids[@]}"
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "--- relay log:" >&2; tail -n 40 "$tmp"/relay*.log >&2 2>/dev/null || true; die "$*"; }

log "ops: Rust scenarios (metrics, admin API, signals, logging)"
cargo test --locked -q -p tern-relay --test ops_metrics --test ops_admin --test ops_signals --test ops_logging \
  --test ops_tls_metrics

# ---- one relay with the exporter and the admin API, fed by coturn's clients ----
port=$(free_port); mport=$(free_port); aport=$(free_port); peer=$(free_port)
base=$((20000 + RANDOM % 150 * 200))
conf="$tmp/turnserver.conf"
printf 'use-auth-secret\nstatic-auth-secret=old-secret\n' > "$conf"
"$BIN/tern-relay" -c "$conf" --listening-ip=127.0.0.1 --listening-port="$port" --relay-ip=127.0.0.1 \
  --min-port="$base" --max-port=$((base + 199)) --realm=ops.test --allow-loopback-peers --no-tls \
  --prometheus --prometheus-address=127.0.0.1 --prometheus-port="$mport" \
  --admin-api --admin-api-port="$aport" --drain-timeout=60 \
  --log-file="$tmp/relay.log" --no-stdout-log --pidfile="$tmp/relay.pid" &
relay=$!
pids+=("$relay")
turnutils_peer -L 127.0.0.1 -p "$peer" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null || fail "the relay did not become ready"

# uclient [secret] [user] [messages] [clients]: Send-indication mode, no RTCP, the echo peer.
uclient() {
  timeout 60 turnutils_uclient -s -c -n "${3:-50}" -m "${4:-1}" -W "$1" -u "$2" -e 127.0.0.1 -r "$peer" \
    -p "$port" 127.0.0.1 2>&1
}
# allocates SECRET USER: whether a short uclient run gets its allocation and relays without loss.
allocates() {
  local out
  out=$(uclient "$1" "$2" 5 || true)
  grep -q "Total lost packets 0 " <<<"$out"
}
# The same, retried for a few seconds until it does (or until it no longer does).
eventually_allocates() { for _ in $(seq 10); do allocates "$1" "$2" && return 0; sleep 0.2; done; return 1; }
eventually_refused() { for _ in $(seq 10); do allocates "$1" "$2" || return 0; sleep 0.2; done; return 1; }
lost() { sed -n 's/.*Total lost packets \([0-9]*\).*/\1/p' | tail -n 1; }
scrape() { curl -sf "http://127.0.0.1:$mport/metrics"; }
value() { awk -v s="$1" '$1 == s { print $2 }'; }
sessions() { curl -sf "http://127.0.0.1:$aport/sessions"; }
# The ids of the live sessions whose user ends in ":$1".
session_ids() {
  sessions | python3 -c 'import json,sys; u=sys.argv[1]; print(" ".join(s["id"] for s in json.load(sys.stdin)["sessions"] if s["user"].endswith(":"+u)))' "$1"
}
# Ends every live session of user $1 through the admin API, one id at a time.
kill_sessions_by_id() {
  for id in $(session_ids "$1"); do curl -sf -X DELETE "http://127.0.0.1:$aport/sessions/$id" >/dev/null; done
}
# The same in one request (user=NAME matches the REST user part of the user names).
kill_user() { curl -sf -X DELETE "http://127.0.0.1:$aport/sessions?user=$1" >/dev/null; }

log "ops: the exporter under uclient traffic, checked by promtool"
scrape > "$tmp/before.prom"
promtool check metrics < "$tmp/before.prom" || fail "promtool rejects the idle scrape"
out=$(uclient old-secret alice 100 2)
[ "$(lost <<<"$out")" = "0" ] || { tail -n 5 <<<"$out"; fail "uclient lost packets"; }
sleep 0.3
scrape > "$tmp/after.prom"
promtool check metrics < "$tmp/after.prom" || fail "promtool rejects the scrape"
sent_before=$(value 'tern_relayed_packets_total{direction="client_to_peer"}' < "$tmp/before.prom")
sent_after=$(value 'tern_relayed_packets_total{direction="client_to_peer"}' < "$tmp/after.prom")
back_after=$(value 'tern_relayed_packets_total{direction="peer_to_client"}' < "$tmp/after.prom")
created=$(value 'tern_allocations_created_total{transport="udp"}' < "$tmp/after.prom")
echo "relayed client->peer ${sent_before} -> ${sent_after}, peer->client ${back_after}, allocations created ${created}"
[ "$sent_before" = 0 ] && [ "$sent_after" -ge 200 ] && [ "$back_after" -ge 200 ] && [ "$created" -ge 2 ] \
  || fail "the counters did not follow the traffic"
kill_user alice

log "ops: the admin API lists a live uclient session and kills it"
uclient old-secret carol 300 > "$tmp/carol.out" &
carol=$!
pids+=("$carol")
ids=""
for _ in $(seq 50); do
  ids=$(session_ids carol)
  [ -n "$ids" ] && sessions | grep -q '"bytes_to_peer": [1-9]' && break
  sleep 0.1
done
[ -n "$ids" ] || fail "the admin API does not list uclient's session"
echo "carol's sessions: $ids"
sleep 1
kill_sessions_by_id carol
[ -z "$(session_ids carol)" ] || fail "carol's sessions are still listed after the kill"
wait "$carol" || true
carol_lost=$(lost < "$tmp/carol.out")
echo "uclient after the kill: lost ${carol_lost:-?} of 300 packets"
[ -n "$carol_lost" ] && [ "$carol_lost" -gt 0 ] || { tail -n 5 "$tmp/carol.out"; fail "uclient did not notice its allocation was gone"; }
grep -q "allocation ended by the admin API" "$tmp/relay.log" || fail "the kill is not logged"

log "ops: secret rotation with SIGHUP while a call relays"
# The call: 1200 packets 20 ms apart (24 s), longer than the reloads and checks below take.
uclient old-secret dave 1200 > "$tmp/dave.out" &
dave=$!
pids+=("$dave")
sleep 0.5
if allocates new-secret erin; then fail "the new secret works before the reload"; fi
printf 'use-auth-secret\nstatic-auth-secret=new-secret\nstatic-auth-secret=old-secret\n' > "$conf"
kill -HUP "$relay"
eventually_allocates new-secret erin || fail "the new secret does not work after SIGHUP"
allocates old-secret erin || fail "the old secret stopped working too early"
printf 'use-auth-secret\nstatic-auth-secret=new-secret\n' > "$conf"
kill -HUP "$relay"
eventually_refused old-secret erin || fail "the removed secret still works"
allocates new-secret erin || fail "the new secret stopped working"
kill -0 "$dave" 2>/dev/null || fail "the call ended before the second reload; make it longer"
wait "$dave" || true
[ "$(lost < "$tmp/dave.out")" = "0" ] || { tail -n 5 "$tmp/dave.out"; fail "the call lost packets across the reloads"; }
echo "the call relayed all 1200 packets across both reloads"
[ "$(grep -c 'configuration reloaded' "$tmp/relay.log")" -ge 2 ] || fail "the reloads are not logged"
kill_user erin
kill_user dave

log "ops: drain with SIGUSR1"
uclient new-secret frank 200 > "$tmp/frank.out" &
frank=$!
pids+=("$frank")
sleep 0.5
kill -USR1 "$relay"
for _ in $(seq 50); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$aport/readyz")" = 503 ] && break; sleep 0.1; done
sleep 0.2
if allocates new-secret grace; then fail "a new allocation was accepted while draining"; fi
kill -0 "$frank" 2>/dev/null || fail "the call ended before the drain began; make it longer"
wait "$frank" || true
[ "$(lost < "$tmp/frank.out")" = "0" ] || { tail -n 5 "$tmp/frank.out"; fail "the existing call lost packets while draining"; }
kill -0 "$relay" 2>/dev/null || fail "the relay exited with allocations still live"
drain_rejected=$(scrape | value tern_drain_rejections_total)
echo "during the drain: frank's call lost 0 packets; ${drain_rejected} new allocation(s) refused with 508"
[ "$drain_rejected" -ge 1 ] || fail "no drain rejection was counted"
# uclient leaves one allocation behind at exit; end the rest as an operator would.
kill_user frank
for _ in $(seq 50); do kill -0 "$relay" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$relay" 2>/dev/null; then fail "the relay did not exit after its last allocation ended"; fi
wait "$relay" || fail "the drained relay exited with an error"
[ ! -e "$tmp/relay.pid" ] || fail "the pidfile was left behind"
grep -q "drained; exiting" "$tmp/relay.log" || fail "the drain's end is not logged"
echo "the relay exited 0 once its last allocation ended (the one uclient leaves behind was ended through the admin API)"

log "ops: systemd units"
mkdir -p "$tmp/units"
for u in tern-relay tern-sidecar; do
  # The units name /usr/local/bin, empty here: verify copies that point at the fresh binaries.
  sed "s#/usr/local/bin/#$BIN/#g" "conf/$u.service" > "$tmp/units/$u.service"
done
systemd-analyze verify "$tmp/units/tern-relay.service" "$tmp/units/tern-sidecar.service"
for u in tern-relay tern-sidecar; do
  grep -q '^LimitNOFILE=' "conf/$u.service" && grep -q '^AmbientCapabilities=CAP_NET_BIND_SERVICE' "conf/$u.service" \
    || die "$u.service lacks LimitNOFILE or CAP_NET_BIND_SERVICE"
done

log "ops: scripts/install into a staging directory"
stage="$tmp/stage"
scripts/install --destdir "$stage" --bin-dir "$BIN" >/dev/null
for f in usr/local/bin/tern-relay usr/local/bin/tern-sidecar etc/tern/turnserver.conf \
  etc/systemd/system/tern-relay.service etc/systemd/system/tern-sidecar.service \
  usr/local/share/doc/tern/OPERATIONS.md; do
  [ -e "$stage/$f" ] || die "scripts/install did not install $f"
done
[ "$(stat -c %a "$stage/etc/tern/turnserver.conf")" = 640 ] || die "the installed config is not mode 640"
grep -q '^static-auth-secret=[0-9a-f]\{64\}$' "$stage/etc/tern/turnserver.conf" || die "no random secret in the config"
"$BIN/tern-relay" -c "$stage/etc/tern/turnserver.conf" --check-config >/dev/null \
  || die "the installed config does not pass --check-config"
cp "$stage/etc/tern/turnserver.conf" "$tmp/conf.first"
scripts/install --destdir "$stage" --bin-dir "$BIN" >/dev/null
cmp -s "$stage/etc/tern/turnserver.conf" "$tmp/conf.first" || die "a second install overwrote the config"

log "ops: the container (Dockerfile by inspection, the entrypoint for real)"
# Docker cannot run here: every COPY source must exist and the build names the real packages.
grep -E '^COPY [^-]' Dockerfile | while read -r _ srcs; do
  for s in ${srcs% *}; do [ -e "$s" ] || die "Dockerfile copies $s, which does not exist"; done
done
grep -q -- '-p tern-relay -p tern-sidecar' Dockerfile || die "the Dockerfile does not build both binaries"
grep -q -- '--network host' Dockerfile || die "the Dockerfile does not document --network host"
bash -n scripts/docker-entrypoint
mkdir -p "$tmp/bin"
ln -s "$BIN/tern-relay" "$tmp/bin/tern-relay"
eport=$(free_port)
PATH="$tmp/bin:$PATH" TERN_SIDECAR=off scripts/docker-entrypoint -n --listening-ip=127.0.0.1 \
  --listening-port="$eport" --min-port="$base" --max-port=$((base + 199)) --no-tls \
  --log-file="$tmp/relay-entry.log" --no-stdout-log &
entry=$!
pids+=("$entry")
for _ in $(seq 50); do grep -q "tern-relay listening" "$tmp/relay-entry.log" 2>/dev/null && break; sleep 0.1; done
kill -HUP "$entry"
for _ in $(seq 50); do grep -q "configuration reloaded" "$tmp/relay-entry.log" && break; sleep 0.1; done
grep -q "configuration reloaded" "$tmp/relay-entry.log" || fail "the entrypoint did not pass SIGHUP on"
kill -USR1 "$entry"
code=0
wait "$entry" || code=$?
[ "$code" = 0 ] || fail "the entrypoint exited $code after a drain (want 0)"
grep -q "drained; exiting" "$tmp/relay-entry.log" || fail "the entrypoint did not pass SIGUSR1 on"
# Both programs: the sidecar answers, and SIGTERM stops both with status 0.
ln -s "$BIN/tern-sidecar" "$tmp/bin/tern-sidecar"
sport=$(free_port)
printf 'listening-ip=127.0.0.1\nlistening-port=%s\nmin-port=%s\nmax-port=%s\nno-tls\nuse-auth-secret\nstatic-auth-secret=entrypoint-test-secret\nrealm=ops.test\n' \
  "$eport" "$base" $((base + 199)) > "$tmp/entry.conf"
PATH="$tmp/bin:$PATH" TERN_CONFIG="$tmp/entry.conf" TERN_SIDECAR_ARGS="--listen 127.0.0.1:$sport" \
  scripts/docker-entrypoint > "$tmp/entry.out" 2>&1 &
entry=$!
pids+=("$entry")
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$sport/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$sport/healthz" >/dev/null || { cat "$tmp/entry.out"; fail "the sidecar did not start under the entrypoint"; }
grep -q "tern-relay listening" "$tmp/entry.out" || fail "the relay did not start under the entrypoint"
kill -TERM "$entry"
code=0
wait "$entry" || code=$?
[ "$code" = 0 ] || { cat "$tmp/entry.out"; fail "the entrypoint exited $code on SIGTERM (want 0)"; }
if grep -q "exited with status" "$tmp/entry.out"; then fail "a deliberate stop was reported as a sidecar failure"; fi
echo "the entrypoint forwards SIGHUP and SIGUSR1, runs both programs, and stops both on SIGTERM with status 0"
