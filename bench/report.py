#!/usr/bin/env python3
"""Write the "Disclosure path vs nginx floor" section of BENCHMARKS.md from the results directory
that bench/compare.sh fills. Replaces only the text between the compare markers (appends the
section when they are missing) and never touches other sections.

Usage: bench/report.py RESULTS_DIR BENCHMARKS_MD
"""

import datetime
import json
import pathlib
import re
import sys

START = "<!-- compare:start -->"
END = "<!-- compare:end -->"
HEADING = "## Disclosure path vs nginx floor"
# The owners' yardstick for disclosures: CPU per disclosure over CPU per empty request on the same
# stack in one run, durable audit included.
YARDSTICK_LIMIT = 1.6


def load(results, name, raw=False):
    path = results / name
    if not path.exists():
        return None
    text = path.read_text().rstrip() if raw else path.read_text().strip()
    if name.endswith(".json"):
        return json.loads(text)
    return text


def number(results, name):
    value = load(results, name)
    return float(value) if value not in (None, "") else None


def mb(kb):
    return None if kb is None else kb / 1024.0


def fmt(value, digits=1, unit=""):
    if value is None:
        return "—"
    return f"{value:,.{digits}f}{unit}"


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.{digits}f}×"


def verdict(ok):
    if ok is None:
        return "—"
    return "yes" if ok else "**no**"


def lat(report, key="latency_ms"):
    if report is None:
        return "—"
    p = report[key]
    return f"{p['p50']:.2f} / {p['p90']:.2f} / {p['p99']:.2f} / {p['p999']:.2f}"


def errors(report):
    if report is None:
        return "—"
    if report["errors"] == 0:
        return "0"
    parts = [f"{f['status']} {f['reason'] or '(no reason)'}: {f['count']}" for f in report["failures"]]
    parts += [f"{k}: {n}" for k, n in report["transport_errors"].items()]
    return f"{report['errors']} ({'; '.join(parts)})"


def histogram(text, name):
    """Cumulative bucket counts {le: count} of an unlabelled histogram in Prometheus text."""
    buckets = {}
    for line in (text or "").splitlines():
        m = re.match(re.escape(name) + r'_bucket\{le="([^"]+)"\} (\d+)$', line.strip())
        if m:
            buckets[m.group(1)] = int(m.group(2))
    return buckets


def over(before, after, name, bound="0.005"):
    """(observations, observations above `bound` seconds) of histogram `name` between two
    /metrics texts, or None when either lacks it."""
    a, b = histogram(before, name), histogram(after, name)
    if "+Inf" not in a or "+Inf" not in b or bound not in a or bound not in b:
        return None
    total = b["+Inf"] - a["+Inf"]
    return total, total - (b[bound] - a[bound])


def audit_waits(srv):
    """The rate run's audit waits and commits over 5 ms, as a table cell."""
    waits = over(srv["metrics_before_rate"], srv["metrics_after_rate"],
                 "poortwachter_audit_wait_duration_seconds")
    commits = over(srv["metrics_before_rate"], srv["metrics_after_rate"],
                   "poortwachter_audit_commit_duration_seconds")
    if waits is None or commits is None or not waits[0] or not commits[0]:
        return "—"
    return (f"{waits[1]:,} of {waits[0]:,} requests ({100.0 * waits[1] / waits[0]:.1f} %); "
            f"{commits[1]:,} of {commits[0]:,} commits")


def lscpu_summary(text):
    fields = {}
    for line in (text or "").splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip()] = v.strip()
    keys = ["Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket", "Socket(s)",
            "Hypervisor vendor", "L1d cache", "L2 cache", "L3 cache"]
    return "; ".join(f"{k}: {fields[k]}" for k in keys if k in fields)


def cpu_count(text):
    match = re.search(r"^CPU\(s\):\s*(\d+)", text or "", re.MULTILINE)
    return int(match.group(1)) if match else 1


def section(results):
    r = {}
    for server in ("nginx", "sqlite", "postgres"):
        r[server] = {
            "throughput": load(results, f"{server}-throughput.json"),
            "rate": load(results, f"{server}-rate.json"),
            "rss_at_rate": mb(number(results, f"{server}-rss-at-rate.kb")),
            "hwm": mb(number(results, f"{server}-hwm.kb")),
            "ready": number(results, f"{server}-ready.ms"),
            "audit": load(results, f"{server}-audit.json"),
            "cpu": load(results, f"{server}-cpu.json"),
            "healthz": load(results, f"{server}-healthz.json"),
            "healthz_cpu": load(results, f"{server}-healthz-cpu.json"),
            "rate_steal": number(results, f"{server}-rate-steal.ticks"),
            "metrics_before_rate": load(results, f"{server}-metrics-before-rate.txt"),
            "metrics_after_rate": load(results, f"{server}-metrics-after-rate.txt"),
        }
    n, g = r["nginx"], r["sqlite"]
    tp = lambda s: s["throughput"]["throughput_rps"] if s["throughput"] else None
    p99 = lambda s: s["rate"]["latency_ms"]["p99"] if s["rate"] else None

    def server_cpu(srv, run="throughput", cpu="cpu"):
        c, t = srv[cpu], srv[run]
        if not c or not t or not t["total_requests"]:
            return None
        return c["server_ticks"] / c["clk_tck"] * 1e6 / t["total_requests"]

    cpus = cpu_count(load(results, "lscpu.txt"))
    clk_tck = (n["cpu"] or g["cpu"] or {}).get("clk_tck", 100)

    def steal_pct(ticks, report):
        # Share of all vCPUs' time during the run that the hypervisor gave to other guests.
        if ticks is None or not report or not report.get("elapsed_s"):
            return None
        return 100.0 * ticks / (report["elapsed_s"] * clk_tck * cpus)

    def steal(srv):
        tput = steal_pct((srv["cpu"] or {}).get("steal_ticks"), srv["throughput"])
        rate = steal_pct(srv["rate_steal"], srv["rate"])
        return f"{fmt(tput, 0)}; {fmt(rate, 0)}"

    hz = lambda s: s["healthz"]["throughput_rps"] if s["healthz"] else None
    hz_cpu = lambda s: server_cpu(s, "healthz", "healthz_cpu")

    def generator_cpu(srv):
        c, t = srv["cpu"], srv["throughput"]
        if not c or not t or not t["total_requests"]:
            return None
        return (c["generator_user_s"] + c["generator_sys_s"]) * 1e6 / t["total_requests"]

    def yardstick(srv):
        # What a disclosure costs over what the same stack spends answering nothing.
        d, e = server_cpu(srv), hz_cpu(srv)
        return None if d is None or e is None or e == 0 else d / e

    def yardstick_cell(srv):
        y = yardstick(srv)
        return "—" if y is None else f"{y:.2f}× ({fmt(server_cpu(srv))} ÷ {fmt(hz_cpu(srv))} µs)"

    def yardstick_ok(srv):
        y = yardstick(srv)
        return None if y is None else y <= YARDSTICK_LIMIT

    audit_line = "—"
    audit_ok = None
    if g["audit"] and g["throughput"]:
        rows = int(g["audit"]["after"]) - int(g["audit"]["before"])
        sent = g["throughput"]["total_requests"]
        elapsed = g["throughput"]["elapsed_s"]
        audit_line = (f"{rows / elapsed:,.0f} records/s for {sent / elapsed:,.0f} disclosures/s "
                      f"({rows:,} records for {sent:,} requests)")
        audit_ok = rows >= sent
        audit_ratio = f"{rows / sent:.3f}" if sent else "—"
    else:
        audit_ratio = "—"

    settings = load(results, "settings.txt") or ""
    s = dict(kv.split("=", 1) for kv in settings.split())
    body_bytes = load(results, "body-bytes.txt")
    commit = load(results, "commit.txt") or "unknown"
    dirty = " with uncommitted changes" if load(results, "dirty.txt") else ""
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    uptime = load(results, "uptime.txt") or ""
    load_avg = re.search(r"load average: (.*)$", uptime)
    g_rate, n_rate = g["rate"], n["rate"]

    pg_status = load(results, "postgres.status") or "not run"

    def row(label, nginx, gateway, rat, target, ok):
        return f"| {label} | {nginx} | {gateway} | {rat} | {target} | {verdict(ok)} |"

    waits_cell = audit_waits(g)
    tp_ok = None if tp(g) is None or tp(n) is None else tp(g) >= 0.5 * tp(n)
    rows = [
        "| | nginx (floor) | poortwachter, SQLite | ratio | target | met |",
        "|---|---|---|---|---|---|",
        row(f"throughput at concurrency {s.get('CONCURRENCY', '?')} (req/s)",
            fmt(tp(n), 0), fmt(tp(g), 0), ratio(tp(g), tp(n)), "≥ 0.5 × nginx", tp_ok),
        row("server CPU time per request in that run (µs, user + system, all threads)",
            fmt(server_cpu(n)), fmt(server_cpu(g)), ratio(server_cpu(g), server_cpu(n), 1), "",
            None),
        row(f"the TLS and HTTP stack alone: `GET /healthz` at concurrency "
            f"{s.get('CONCURRENCY', '?')} (req/s; gateway: rustls + hyper + axum, no database)",
            fmt(hz(n), 0), fmt(hz(g), 0), ratio(hz(g), hz(n)), "", None),
        row("server CPU time per `/healthz` request in that run (µs)",
            fmt(hz_cpu(n)), fmt(hz_cpu(g)), ratio(hz_cpu(g), hz_cpu(n), 1), "", None),
        row("**the yardstick**: server CPU time per disclosure ÷ per empty request (`GET "
            "/healthz`), same server, same run, durable audit included",
            "—", yardstick_cell(g), "", f"≤ {YARDSTICK_LIMIT}×", yardstick_ok(g)),
        row("load generator CPU time per request in that run (µs)",
            fmt(generator_cpu(n)), fmt(generator_cpu(g)), "", "", None),
        row("latency at that concurrency, p50 / p90 / p99 / p99.9 (ms)",
            lat(n["throughput"]), lat(g["throughput"]), "", "", None),
        row(f"latency at {s.get('RATE', '?')} req/s offered, p50 / p90 / p99 / p99.9 (ms, "
            "from the intended send time)",
            lat(n_rate), lat(g_rate), ratio(p99(g), p99(n), 1) + " (p99)", "p99 ≤ 5 ms",
            None if p99(g) is None else p99(g) <= 5.0),
        row(f"waits over 5 ms for the audit record at {s.get('RATE', '?')} req/s (the gateway's "
            "own histograms over the rate run, warm-up included: requests that waited for their "
            "record to be durable; audit commits that took that long)",
            "—", waits_cell, "", "", None),
        row(f"achieved rate at {s.get('RATE', '?')} req/s offered (req/s)",
            fmt(n_rate and n_rate["throughput_rps"], 0), fmt(g_rate and g_rate["throughput_rps"], 0),
            "", "", None),
        row(f"resident memory at {s.get('RATE', '?')} req/s (MB, peak RSS during that run: VmHWM "
            "reset before it; nginx: master + workers)",
            fmt(n["rss_at_rate"]), fmt(g["rss_at_rate"]), ratio(g["rss_at_rate"], n["rss_at_rate"], 1),
            "≤ 64 MB", None if g["rss_at_rate"] is None else g["rss_at_rate"] <= 64),
        row("peak resident memory over both runs (VmHWM, MB)",
            fmt(n["hwm"]), fmt(g["hwm"]), ratio(g["hwm"], n["hwm"], 1), "", None),
        row("start to ready (spawn → first 200 on /healthz, ms; gateway on a fresh database)",
            fmt(n["ready"]), fmt(g["ready"]), ratio(g["ready"], n["ready"], 1), "≤ 1,000 ms",
            None if g["ready"] is None else g["ready"] <= 1000),
        row("audit records/s vs disclosures/s (concurrency run, warm-up included)",
            "—", audit_line, audit_ratio, "≥ 1", audit_ok),
        row("CPU time stolen by the hypervisor during the runs (% of both vCPUs; concurrency "
            "run; rate run)", steal(n), steal(g), "", "", None),
        row("errors (concurrency run; rate run)",
            f"{errors(n['throughput'])}; {errors(n_rate)}",
            f"{errors(g['throughput'])}; {errors(g_rate)}", "", "0", None),
    ]

    stack_line = ""
    if server_cpu(g) is not None and hz_cpu(g) is not None:
        stack_line = (
            f"Of the gateway's {fmt(server_cpu(g))} µs of CPU time per disclosure, "
            f"{fmt(hz_cpu(g))} µs is what the same server spends on an empty `GET /healthz` over "
            "the same kind of connection (TLS records, HTTP parsing, routing, request span); the "
            f"rest, {fmt(server_cpu(g) - hz_cpu(g))} µs, is the disclosure's own work (consent and "
            "covenant checks, two indexed reads, decryption, the audit commit with its fsync, "
            "JSON). The stack alone reaches "
            f"{ratio(hz(g), hz(n))} of nginx's `/healthz` throughput in this run.")
    if waits_cell != "—":
        stack_line += (
            (" " if stack_line else "")
            + "Every disclosure waits for the one audit writer, so a commit that stalls (its vCPU "
            "taken by the hypervisor, or a slow sync) delays every request that arrives meanwhile; "
            "the audit-wait row counts those requests. Where they are as many as the requests "
            "beyond the p99, the tail is the audit writer's (in the fifth round of BENCHMARKS.md "
            "their number followed the steal time); where they are fewer and nginx's tail is as "
            "long, it is the machine's.")

    pg = r["postgres"]
    if pg_status == "measured":
        pg_text = (f"PostgreSQL: throughput {fmt(tp(pg), 0)} req/s ({ratio(tp(pg), tp(n))} nginx); "
                   f"CPU per disclosure ÷ per `/healthz` {yardstick_cell(pg)}; "
                   f"at {s.get('RATE', '?')} req/s p50/p90/p99/p99.9 {lat(pg['rate'])} ms; "
                   f"resident {fmt(pg['rss_at_rate'])} MB; ready in {fmt(pg['ready'])} ms.")
    elif pg_status == "not available in this build":
        pg_text = ("PostgreSQL: not available in this build (`poortwachter serve` refuses a "
                   "`postgres://` URL), so there are no PostgreSQL figures yet.")
    else:
        pg_text = f"PostgreSQL: {pg_status}."

    nginx_version = (load(results, "nginx-version.txt") or "nginx").replace("nginx version: ", "")
    machine = lscpu_summary(load(results, "lscpu.txt"))
    free = load(results, "free.txt", raw=True) or ""
    lines = [
        START,
        HEADING,
        "",
        f"**Provisional.** One run of `bench/compare.sh` on {when}, commit `{commit}`{dirty}. "
        "The machine has 2 vCPUs and is **shared with other builds**; the load generator, the "
        "server under test and whatever else runs there compete for the same two cores"
        + (f" (load average at the end: {load_avg.group(1)})" if load_avg else "")
        + ". Expect tens of percent between runs; compare ratios from one run, not figures across "
        "runs.",
        "",
        "**What:** both servers terminate mutual TLS on loopback with the `certs-example` server "
        "certificate, require a client certificate from the example CA and check its CRL; both are "
        "driven by the same `loadgen` (release, "
        f"{s.get('THREADS', '1')} runtime thread, HTTP/1.1 keep-alive, one connection per "
        f"worker, {s.get('CONCURRENCY', '?')} connections, `POST /v1/disclosures` with the demo "
        f"disclosure request as Sociale Dienst Drechtsteden, {s.get('WARMUP', '?')} warm-up then "
        f"{s.get('DURATION', '?')} measured per run). "
        f"**nginx** ({nginx_version}, `worker_processes auto`, no "
        f"access log) answers every request with the {body_bytes or '?'}-byte disclosure response "
        "captured from the gateway (`return 200`). **poortwachter** answers a *permitted* "
        "disclosure: covenant and consent check, handover record read and decrypted, seven fields "
        "released, and the audit record committed to SQLite (WAL, group commit) before the answer. "
        f"The database is a file on {load(results, 'disk.txt') or 'local disk'}, so commits "
        "really reach the disk. "
        "The fixed-rate run is open loop: latency counts from each request's intended send time, "
        "so queueing is not hidden (no coordinated omission). The generator shares the two cores: "
        "at nginx's rate its own CPU time (row below) takes a large part of them, so nginx's "
        "throughput is a floor that is itself held down by the machine, and the throughput ratio "
        "flatters the gateway; CPU time per request is the steadier comparison on a shared "
        "machine.",
        "",
        *rows,
        "",
        *([stack_line, ""] if stack_line else []),
        pg_text,
        "",
        f"**Machine:** {machine}. {load(results, 'rustc.txt') or ''}.",
        "",
        "```",
        "$ free -m",
        free,
        "```",
        "",
        "Reproduce: `bench/compare.sh` (settings via environment: `DURATION`, `WARMUP`, "
        "`CONCURRENCY`, `RATE`, `THREADS`; raw JSON reports stay in the work directory with "
        "`KEEP=1`). The load generator alone: `cargo run --release -p loadgen -- --help`.",
        END,
    ]
    return "\n".join(lines) + "\n"


def write(results, target):
    """Put the section for RESULTS into the file TARGET, between the markers."""
    new = section(results)
    text = target.read_text() if target.exists() else "# Benchmarks\n"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        _, after = rest.split(END, 1)
        text = before + new.rstrip("\n") + after
    else:
        text = text.rstrip("\n") + "\n\n" + new
    target.write_text(text)


def main():
    write(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]))


if __name__ == "__main__":
    main()
