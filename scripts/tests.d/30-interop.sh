# shellcheck shell=bash disable=SC2154  # NAME_port, NAME_pid and NAME_args are set by launch()
# Interop with coturn's own clients (Debian's coturn package, 4.6.1 on bookworm):
#  - turnutils_stunclient gets its own address back from tern-relay (checked against the
#    kernel's view of the client socket, read with strace);
#  - the coturn command line that starts Debian's turnserver here starts tern-relay too;
#  - turnutils_uclient with turnutils_peer as the echo peer, every combination with zero loss:
#    UDP/TCP x ChannelData/Send x echo peer/client-to-client x REST secret/static user, with
#    uclient's default RTP/RTCP pairs (EVEN-PORT with the R bit, then RESERVATION-TOKEN).
#
# TERN_INTEROP_RATE=1 also measures uclient's relayed message rate for tern-relay (release
# build) and coturn under the same command (see docs/INTEROP.md); it is not part of CI.
. "$(dirname "$0")/../lib.sh"
set -euo pipefail
cd "$TERN_ROOT"

need_apt coturn strace

work="$(mktemp -d /tmp/tern-interop.XXXXXX)"
pids=()
cleanup() {
  stop_pids "${pids[@]}"
  rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${TERN_INTEROP_RATE:-}" ]; then
  cargo build --release --locked -q -p tern-relay
  relay_bin="$TERN_ROOT/target/release/tern-relay"
else
  cargo build --locked -q -p tern-relay
  relay_bin="$TERN_ROOT/target/debug/tern-relay"
fi

secret="interop-secret"
realm="interop.test"
user="alice"
pass="wonderland"

# Relay port ranges that other sections and engineers are unlikely to use at the same time: 1000
# ports a server (uclient's RTP/RTCP pairs need free even/odd pairs in each worker's slice).
# Each server gets its own range: launch() advances range_base in this shell (the command-line
# functions below run in a subshell, where an increment would be lost and every server would
# share one range, taking each other's ports).
range_base=$(( 20000 + (RANDOM % 8) * 1000 ))

# coturn's command line, as an operator writes it: REST secret, loopback only.
coturn_line() { # PORT RANGE
  echo -n "-n --listening-ip=127.0.0.1 --listening-port=$1 --relay-ip=127.0.0.1 $2" \
    "--realm=$realm --use-auth-secret --static-auth-secret=$secret --allow-loopback-peers" \
    "--fingerprint --no-tls --no-dtls --no-cli --log-file=stdout --simple-log"
}
# The same with a static long-term user instead of the secret.
static_line() { # PORT RANGE
  echo -n "-n --listening-ip=127.0.0.1 --listening-port=$1 --relay-ip=127.0.0.1 $2" \
    "--realm=$realm --lt-cred-mech --user=$user:$pass --allow-loopback-peers" \
    "--fingerprint --no-tls --no-dtls --no-cli --log-file=stdout --simple-log"
}

# launch NAME LINE BIN [EXTRA...] : starts a server with the command line LINE (coturn_line or
# static_line) on a fresh free port, plus EXTRA flags, and waits until it answers STUN. Sets
# NAME_port, NAME_pid and NAME_args. A port taken in between (the machine is shared) means a retry.
launch() {
  local name="$1" line="$2" bin="$3"; shift 3
  local port pid args
  for _ in 1 2 3; do
    port=$(free_port)
    range_base=$(( range_base + 1000 ))
    read -r -a args <<<"$("$line" "$port" "--min-port=$range_base --max-port=$(( range_base + 999 ))") $*"
    "$bin" "${args[@]}" >"$work/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 50); do
      if ! kill -0 "$pid" 2>/dev/null; then
        grep -qi "in use" "$work/$name.log" && continue 2
        cat "$work/$name.log" >&2
        die "$name exited at start: $bin ${args[*]}"
      fi
      if timeout 1 turnutils_stunclient -p "$port" 127.0.0.1 >/dev/null 2>&1; then
        printf -v "${name}_port" '%s' "$port"
        printf -v "${name}_pid" '%s' "$pid"
        eval "${name}_args=(\"\${args[@]}\")"
        return 0
      fi
      sleep 0.2
    done
    cat "$work/$name.log" >&2
    die "$name does not answer STUN on 127.0.0.1:$port"
  done
  die "$name: no free port after 3 tries"
}

# --- 1. STUN: turnutils_stunclient gets its own address back --------------------------------
# stunclient binds an ephemeral port and prints only the reflexive address; strace shows the
# socket's real address (its getsockname). From 127.0.0.2 so the IP cannot be the server's own.
stun_check() { # NAME PORT
  local name="$1" port="$2" out trace reported own
  out="$(timeout 10 strace -qq -e trace=getsockname -o "$work/stun-$name.trace" \
    turnutils_stunclient -p "$port" -L 127.0.0.2 127.0.0.1 2>&1)" || { echo "$out" >&2; die "stunclient against $name failed"; }
  reported="$(sed -n 's/.*UDP reflexive addr: \([0-9.]*:[0-9]*\).*/\1/p' <<<"$out" | head -n1)"
  trace="$(grep -o 'sin_port=htons([0-9]*), sin_addr=inet_addr("[0-9.]*")' "$work/stun-$name.trace" | tail -n1)"
  own="$(sed 's/sin_port=htons(\([0-9]*\)), sin_addr=inet_addr("\([0-9.]*\)")/\2:\1/' <<<"$trace")"
  [ -n "$reported" ] || { echo "$out" >&2; die "stunclient against $name printed no reflexive address"; }
  [ -n "$own" ] || die "strace did not show stunclient's socket address"
  [ "$reported" = "$own" ] || die "$name reported $reported to a client at $own"
  log "stunclient: $name reports the client's own address $own"
}

# tern-relay with exactly the command line that starts Debian's turnserver (only the port and
# relay range differ), and turnserver itself.
launch tern coturn_line "$relay_bin"
launch coturn coturn_line turnserver
# shellcheck disable=SC2154
log "the coturn command line starts both: ${coturn_args[*]}"
stun_check coturn "$coturn_port"
stun_check tern-relay "$tern_port"

# --- 2. TURN: turnutils_uclient, every combination, zero loss --------------------------------
# Debian's uclient 4.6.1 binds random channel numbers up to 0x7FFF (RFC 5766's range); RFC 8656
# ends the range at 0x4FFF, so tern-relay needs coturn's rfc5766-channel-numbers for those
# runs. The Send-indication runs use the exact coturn command line above.
launch tern_ch coturn_line "$relay_bin" --rfc5766-channel-numbers
launch tern_static static_line "$relay_bin" --rfc5766-channel-numbers
peer_port=$(free_port)
turnutils_peer -L 127.0.0.1 -p "$peer_port" >"$work/peer.log" 2>&1 &
pids+=($!)

msgs=15       # per client
clients=4     # uclient -m: with RTP/RTCP pairs that is 8 allocations per run
len=171       # odd, so ChannelData over TCP needs padding
runs=()
for auth in rest static; do
  for tr in udp tcp; do
    for mode in channel send; do
      for topo in peer c2c; do
        flags=()
        [ "$tr" = tcp ] && flags+=(-t)
        [ "$mode" = send ] && flags+=(-s)
        if [ "$topo" = c2c ]; then flags+=(-y); else flags+=(-e 127.0.0.1 -r "$peer_port"); fi
        if [ "$auth" = rest ]; then
          flags+=(-W "$secret")
          if [ "$mode" = send ]; then port=$tern_port; else port=$tern_ch_port; fi
        else
          flags+=(-u "$user" -w "$pass")
          port=$tern_static_port
        fi
        runs+=("$auth-$tr-$mode-$topo|$port|${flags[*]}")
      done
    done
  done
done

uclient_run() { # NAME PORT FLAGS...
  local name="$1" port="$2"; shift 2
  timeout 120 turnutils_uclient "$@" -n "$msgs" -m "$clients" -l "$len" -p "$port" 127.0.0.1 \
    >"$work/uc-$name.log" 2>&1 || echo "exit status $?" >>"$work/uc-$name.log"
}

# Four at a time: each run is mostly uclient's own pacing (20 ms a message, 1-6 s start offsets).
t0=$(date +%s)
running=0
for r in "${runs[@]}"; do
  IFS='|' read -r name port flags <<<"$r"
  # shellcheck disable=SC2086
  uclient_run "$name" "$port" $flags &
  running=$(( running + 1 ))
  if [ "$running" -ge 4 ]; then wait -n || true; running=$(( running - 1 )); fi
done
wait_all() { while [ "$running" -gt 0 ]; do wait -n || true; running=$(( running - 1 )); done; }
wait_all

failed=0
for r in "${runs[@]}"; do
  IFS='|' read -r name port flags <<<"$r"
  f="$work/uc-$name.log"
  # Totals: uclient prints "tot_send_msgs=N, tot_recv_msgs=M" at the end, then the loss line.
  tot="$(grep -o 'tot_send_msgs=[0-9]*, tot_recv_msgs=[0-9]*' "$f" | tail -n1 || true)"
  sent="$(sed -n 's/tot_send_msgs=\([0-9]*\),.*/\1/p' <<<"$tot")"
  recv="$(sed -n 's/.*tot_recv_msgs=\([0-9]*\)/\1/p' <<<"$tot")"
  expected=$(( msgs * clients ))
  if grep -q 'Total lost packets 0 (' "$f" && [ "${sent:-0}" -eq "$expected" ] && [ "${recv:-0}" -eq "$expected" ]; then
    printf '  ok    %-26s %s/%s messages, 0 lost   (uclient %s)\n' "$name" "$recv" "$sent" "$flags" >&2
  else
    printf '  FAIL  %-26s sent=%s recv=%s expected=%s (uclient %s -p %s)\n' "$name" "${sent:-?}" "${recv:-?}" \
      "$expected" "$flags" "$port" >&2
    tail -n 15 "$f" | sed 's/^/        /' >&2
    failed=$(( failed + 1 ))
  fi
done
log "uclient: ${#runs[@]} combinations in $(( $(date +%s) - t0 )) s, $failed failed"
if [ "$failed" -gt 0 ]; then
  for n in tern tern_ch tern_static; do echo "--- $n log (tail)" >&2; tail -n 20 "$work/$n.log" >&2; done
  die "$failed uclient combinations lost packets or failed"
fi

# --- 3. Optional: relayed message rate, tern-relay vs coturn under the same command ------------
if [ -n "${TERN_INTEROP_RATE:-}" ]; then
  # 20 client pairs x 1000 messages/s each, ChannelData, client to client: below what this
  # shared 2-core box delivers without loss, so both servers are compared at the same work.
  # tern-relay runs with the coturn line plus --rfc5766-channel-numbers (uclient's channels).
  load="${TERN_INTEROP_RATE_ARGS:--y -c -m 20 -n 4000 -z 1 -l 100}"
  bench="$TERN_ROOT/../shared/bench/uclient_load.py"
  [ -f "$bench" ] || die "rate mode needs $bench (shared/ beside the repository)"
  for rep in $(seq "${TERN_INTEROP_RATE_REPS:-2}"); do
    for target in coturn tern_ch; do
      port_var="${target}_port"; pid_var="${target}_pid"
      # Messages delivered per second, and per server CPU-second (the fair number on 2 shared cores).
      python3 "$bench" --server "127.0.0.1:${!port_var}" --auth "-u $user -W $secret" --server-pid "${!pid_var}" \
        --args "$load" --label "$target#$rep" --timeout 120 | tee -a "$work/rate.jsonl"
    done
  done
  python3 - "$work/rate.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("server    sent     recv     loss%   msg/s(steady)  server-cores  msgs/server-CPU-s(run)")
for r in rows:
    print(f"{r['label']:<9} {r['sent']:<8} {r['recv']:<8} {r.get('loss_pct')!s:<7} {r.get('steady_msg_pps')!s:<14} "
          f"{r.get('steady_server_cores')!s:<13} {r.get('run_msgs_per_cpu_s')}")
PY
fi
