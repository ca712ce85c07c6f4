#!/usr/bin/env python3
"""Medians of scripts/bench-vs-coturn's runs.jsonl, as markdown: one table per worker count with
Tern, coturn and the bare-forwarder ceiling for every figure, the ratios Tern/coturn and
Tern/ceiling, then the issue's targets with how far each is met or missed.

Labels are "server|workers|load|rep"; server is tern, coturn, ceiling (the bare forwarder,
recorded once, under workers 0) or direct (the socket-to-socket latency baseline).

  summarize.py runs.jsonl [--command "the command that made it"]
"""
import argparse
import json
import statistics
from collections import defaultdict

RELAY_LOADS = ["c2c-40k", "c2c-40k-send", "echo-40k", "echo-40k-send", "c2c-100k", "c2c-sat", "echo-sat"]
LOAD_ORDER = RELAY_LOADS + ["lat-half", "alloc", "hold"]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, digits=0):
    if v is None:
        return "n/a"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("--command", default="scripts/bench-vs-coturn")
    args = ap.parse_args()

    runs = defaultdict(list)  # (server, workers, load) -> [report]
    for line in open(args.runs):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        server, workers, load, _rep = r["label"].split("|")
        runs[(server, int(workers), load)].append(r)

    def get(server, w, load, field):
        rs = runs.get((server, w, load), [])
        return med([r.get(field) for r in rs]), len(rs)

    workers = sorted({w for (s, w, _) in runs if s in ("tern", "coturn")})
    out = []
    out.append("Command: `" + args.command + "`  ")
    out.append("Medians over the repetitions (n per cell in the last column). msgs/CPU-s = messages delivered "
               "per second of server CPU (utime+stime from /proc/PID/stat, all threads). Ceiling = the bare C "
               "forwarder (recvmmsg/sendmmsg, batch 64) under the same raw load, per message: its packets per "
               "CPU-second divided by the hops a relay must make (c2c: 1, echo: 2).")
    out.append("")
    targets = {}
    for w in workers:
        out.append(f"### {w} relay worker{'s' if w > 1 else ''} each")
        out.append("")
        out.append("| load | figure | Tern | coturn | ceiling | Tern/coturn | Tern/ceiling | n |")
        out.append("|---|---|---|---|---|---|---|---|")
        for load in LOAD_ORDER:
            if not any(k[1] == w and k[2] == load for k in runs):
                continue
            if load in RELAY_LOADS:
                hops = 2 if load.startswith("echo") else 1
                raw = "c2c-100k" if load == "c2c-100k" else ("c2c-sat" if load.endswith("sat") else "c2c-40k")
                c_cpu, _ = get("ceiling", 0, raw, "per_server_cpu_s")
                if c_cpu is None:
                    c_cpu, _ = get("ceiling", 0, load, "per_server_cpu_s")
                c_cpu = c_cpu / hops if c_cpu else None
                rows = [
                    ("msgs/CPU-s", "per_server_cpu_s", 0, c_cpu, True),
                    ("delivered msg/s", "pps", 0, None, True),
                    ("loss %", "loss_pct", 3, None, False),
                    ("p50 µs", "rtt_p50_us", 0, None, True),
                    ("p99 µs", "rtt_p99_us", 0, None, True),
                    ("p99.9 µs", "rtt_p999_us", 0, None, True),
                ]
                for name, field, digits, ceil, show_ratio in rows:
                    t, n = get("tern", w, load, field)
                    c, m = get("coturn", w, load, field)
                    if ceil is None and field.startswith("rtt"):
                        ceil, _ = get("ceiling", 0, raw, field)
                    out.append(f"| {load} | {name} | {fmt(t, digits)} | {fmt(c, digits)} | {fmt(ceil, digits)} | "
                               f"{ratio(t, c) if show_ratio else '—'} | {ratio(t, ceil) if show_ratio else '—'} | {n}/{m} |")
                    targets[(w, load, field)] = (t, c, ceil)
            elif load == "lat-half":
                t, n = get("tern", w, load, "rtt_p99_us")
                c, m = get("coturn", w, load, "rtt_p99_us")
                d, _ = get("direct", w, load, "rtt_p99_us")
                tr, _ = get("tern", w, load, "offered_rate")
                cr, _ = get("coturn", w, load, "offered_rate")
                tl, _ = get("tern", w, load, "loss_pct")
                cl, _ = get("coturn", w, load, "loss_pct")
                out.append(f"| lat-half | offered msg/s (half of own c2c-sat) | {fmt(tr)} | {fmt(cr)} | — | {ratio(tr, cr)} | — | {n}/{m} |")
                out.append(f"| lat-half | p99 µs | {fmt(t)} | {fmt(c)} | {fmt(d)} (direct) | {ratio(t, c)} | {ratio(t, d)} | {n}/{m} |")
                add_t = t - d if t is not None and d is not None else None
                add_c = c - d if c is not None and d is not None else None
                out.append(f"| lat-half | added p99 µs (vs direct) | {fmt(add_t)} | {fmt(add_c)} | — | {ratio(add_t, add_c)} | — | {n}/{m} |")
                out.append(f"| lat-half | loss % | {fmt(tl, 3)} | {fmt(cl, 3)} | — | — | — | {n}/{m} |")
                targets[(w, load, "added_p99")] = (add_t, add_c, None)
            elif load == "alloc":
                t, n = get("tern", w, load, "per_server_cpu_s")
                c, m = get("coturn", w, load, "per_server_cpu_s")
                ts, _ = get("tern", w, load, "allocs_per_s")
                cs, _ = get("coturn", w, load, "allocs_per_s")
                out.append(f"| alloc | allocations/CPU-s | {fmt(t)} | {fmt(c)} | — | {ratio(t, c)} | — | {n}/{m} |")
                out.append(f"| alloc | allocations/s | {fmt(ts)} | {fmt(cs)} | — | {ratio(ts, cs)} | — | {n}/{m} |")
                targets[(w, load, "per_server_cpu_s")] = (t, c, None)
            elif load == "hold":
                t, n = get("tern", w, load, "rss_bytes_per_alloc")
                c, m = get("coturn", w, load, "rss_bytes_per_alloc")
                tt, _ = get("tern", w, load, "rss_total_bytes_per_alloc")
                ct, _ = get("coturn", w, load, "rss_total_bytes_per_alloc")
                th, _ = get("tern", w, load, "allocs")
                ch, _ = get("coturn", w, load, "allocs")
                out.append(f"| hold | allocations held | {fmt(th)} | {fmt(ch)} | — | — | — | {n}/{m} |")
                out.append(f"| hold | RSS bytes per allocation (growth) | {fmt(t)} | {fmt(c)} | — | {ratio(t, c)} | — | {n}/{m} |")
                out.append(f"| hold | RSS bytes per allocation (whole process) | {fmt(tt)} | {fmt(ct)} | — | {ratio(tt, ct)} | — | {n}/{m} |")
                targets[(w, load, "rss_total")] = (tt, ct, None)
        out.append("")

    # The targets.
    out.append("### Targets")
    out.append("")
    out.append("| target | measured | met |")
    out.append("|---|---|---|")

    def check(name, value, ok, text):
        if value is None:
            out.append(f"| {name} | not measured | — |")
        else:
            out.append(f"| {name} | {text} | {'yes' if ok else 'NO'} |")

    for w in workers:
        t, c, _ = targets.get((w, "c2c-40k", "per_server_cpu_s"), (None, None, None))
        loss, _, _ = targets.get((w, "c2c-40k", "loss_pct"), (None, None, None))
        r = t / c if t and c else None
        check(f"{w}w: c2c channels ≥ 2.4× coturn msgs/CPU-s, zero loss", r,
              r is not None and r >= 2.4 and loss == 0, f"{r:.2f}x, loss {loss:.3f} %" if r else "")
        t, c, ceil = targets.get((w, "echo-40k", "per_server_cpu_s"), (None, None, None))
        r = t / c if t and c else None
        rc = t / ceil if t and ceil else None
        check(f"{w}w: echo peer ≥ 1.35× coturn (~90 % of ceiling)", r, r is not None and r >= 1.35,
              f"{r:.2f}x coturn, {rc:.2f} of ceiling" if r and rc else (f"{r:.2f}x" if r else ""))
        loss, closs, _ = targets.get((w, "c2c-100k", "loss_pct"), (None, None, None))
        check(f"{w}w: zero loss at 100k msg/s offered", loss, loss == 0,
              f"Tern {loss:.3f} %, coturn {closs:.3f} %" if loss is not None and closs is not None else "")
        t, _, _ = targets.get((w, "alloc", "per_server_cpu_s"), (None, None, None))
        check(f"{w}w: ≥ 20,000 allocations per second per core", t, t is not None and t >= 20000,
              f"{t:,.0f} per CPU-s" if t else "")
        t, _, _ = targets.get((w, "hold", "rss_total"), (None, None, None))
        if t is not None or w == 1:
            check(f"{w}w: 16,384 allocations held at ≤ 4 KiB RSS each", t, t is not None and t <= 4096,
                  f"{t:,.0f} B each (whole process / allocations)" if t else "")
        t, _, _ = targets.get((w, "lat-half", "added_p99"), (None, None, None))
        check(f"{w}w: added p99 ≤ 100 µs at half of saturation", t, t is not None and t <= 100,
              f"{t:,.0f} µs" if t is not None else "")
    print("\n".join(out))


if __name__ == "__main__":
    main()
