# A shortened scripts/bench-vs-coturn (debug build, 1 worker, 2-second loads): it must run
# against both servers and the bare forwarder and produce numbers. How fast they are is not
# asserted here: performance is compared as ratios by the full script, never as timed tests.
. "$(dirname "$0")/../lib.sh"
set -euo pipefail
cd "$TERN_ROOT"
out=$(mktemp -d /tmp/tern-bench-smoke.XXXXXX)
trap 'rm -rf "$out"' EXIT
scripts/bench-vs-coturn --quick --out "$out" > "$out/stdout" 2> "$out/stderr" || {
  tail -30 "$out/stderr"; die "bench-vs-coturn --quick failed"
}
python3 - "$out/runs.jsonl" "$out/summary.md" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
labels = {r["label"].rsplit("|", 1)[0]: r for r in runs}
want = ["tern|1|c2c-40k", "coturn|1|c2c-40k", "tern|1|echo-40k", "coturn|1|echo-40k",
        "ceiling|0|c2c-40k", "tern|1|alloc", "coturn|1|alloc"]
missing = [w for w in want if w not in labels]
assert not missing, f"runs missing: {missing}"
for w in want:
    r = labels[w]
    assert r.get("per_server_cpu_s") and r["per_server_cpu_s"] > 0, f"{w}: no CPU figure: {r}"
    if "alloc" not in w:
        assert r["received"] > 0 and r["rtt_p50_us"] > 0, f"{w}: nothing relayed: {r}"
    else:
        assert r["allocs"] > 0, f"{w}: no allocation completed: {r}"
summary = open(sys.argv[2]).read()
for figure in ("| c2c-40k | msgs/CPU-s |", "| echo-40k | msgs/CPU-s |", "| alloc | allocations/CPU-s |"):
    line = next((l for l in summary.splitlines() if l.startswith(figure)), None)
    assert line and "n/a" not in line.split("|")[3], f"summary lacks numbers for {figure}: {line}"
print(f"bench smoke: {len(runs)} runs, every figure present")
PY
