#!/usr/bin/env python3
"""Where a profiled gateway spends its CPU: reads `perf script` output (call-graph samples, one
block per sample, leaf frame first) and prints, as a Markdown table, the share of samples whose
stack contains each cost we track (audit commit, fsync, reads, JSON, TLS, tracing, ...).

Shares are inclusive and overlap (a JSON sample inside the request handler counts for both), so
they do not add up to 100 %. bench/profile.sh runs this; it can also be used on its own:

    perf script -F comm,ip,sym -i perf.data | bench/breakdown.py
    perf script -F comm,ip,sym -i perf.data | bench/breakdown.py --folded | inferno-flamegraph
"""

import re
import sys

# (label, thread name or None for any, pattern over one frame's symbol[, pattern to exclude]). A
# sample counts for a row when its thread matches, any frame of its stack matches the pattern and
# no frame matches the exclusion.
ROWS = [
    ("audit writer thread, all of it", "audit-writer", None),
    ("— audit `COMMIT` (SQLite)", "audit-writer", r"sqlite3VdbeHalt"),
    ("— — `fsync` of the WAL", "audit-writer", r"\bunixSync\b"),
    ("— — writing WAL frames", "audit-writer", r"\bwalWriteOneFrame\b"),
    ("— the audit INSERT (row and record JSON)", "audit-writer",
     r"sqlite_direct::insert_record"),
    ("request handler `disclose`", None, r"gateway::disclosure::disclose\b"),
    ("— consent and handover record reads (SQLite)", None, r"sqlite_direct::DirectReads::"),
    ("— opening consents (AES-GCM + claims JSON)", None, r"gateway::disclosure::open_consents"),
    ("— policy decision", None, r"policy::decide::decide\b"),
    ("JSON anywhere (`serde_json`)", None, r"serde_json::"),
    ("TLS (`rustls`: records, the connection's AES-GCM)", None, r"\brustls::"),
    ("the connection outside the handler (HTTP, TLS, socket I/O)", None, r"\bhyper::proto::",
     r"gateway::disclosure::disclose\b"),
    ("tracing and OpenTelemetry internals", None,
     r"tracing_opentelemetry|tracing_subscriber::(registry|layer)|sharded_slab|opentelemetry_sdk"
     r"|tracing_core::dispatcher|tracing::span::Span::(new|record|record_all|make_with)"
     r"|::try_close\b"),
    # glibc's entry points, and mimalloc's (the gateway's allocator since the fifth round): its
    # functions are `mi_*` and `_mi_*`.
    ("`malloc` / `free` (mimalloc, or glibc)", None,
     r"^(__GI___libc_malloc|__GI___libc_free|_int_malloc|_int_free"
     r"|malloc_consolidate|__libc_calloc|__GI___libc_realloc|_int_realloc|_?mi_[a-z0-9_]+)$"),
    ("in the kernel (system calls)", None, r"^entry_SYSCALL_64"),
]


def samples(lines):
    """Yield (thread name, [symbols, leaf first]) for each sample block of `perf script`."""
    comm, frames = None, []
    for line in lines:
        if not line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
        elif not line.startswith(("\t", " " * 8)):
            comm, frames = line.split()[0] if line.split() else "?", []
        else:
            parts = line.strip().split(" ", 1)
            symbol = parts[1] if len(parts) > 1 else "?"
            frames.append(re.sub(r" \(inlined\)$", "", symbol))
    if comm is not None:
        yield comm, frames


def shares(lines):
    """(total samples, [(label, share in percent)]) over the samples in LINES."""
    compiled = [(row[0], row[1], re.compile(row[2]) if row[2] else None,
                 re.compile(row[3]) if len(row) > 3 else None) for row in ROWS]
    counts = [0] * len(ROWS)
    total = 0
    for comm, frames in samples(lines):
        total += 1
        for i, (_, thread, pattern, exclude) in enumerate(compiled):
            if thread is not None and comm != thread:
                continue
            if exclude is not None and any(exclude.search(f) for f in frames):
                continue
            if pattern is None or any(pattern.search(f) for f in frames):
                counts[i] += 1
    return total, [(row[0], 100.0 * n / total if total else 0.0) for row, n in zip(ROWS, counts)]


def table(total, rows):
    out = [f"{total:,} samples of the gateway; shares are inclusive and overlap.", "",
           "| where | share of gateway CPU |", "|---|---|"]
    out += [f"| {label} | {share:.1f} % |" for label, share in rows]
    return "\n".join(out) + "\n"


def folded(lines):
    """The samples as folded stacks (`thread;root;...;leaf count` per distinct stack), the input
    format of flamegraph tools such as `inferno-flamegraph` and Brendan Gregg's flamegraph.pl."""
    counts = {}
    for comm, frames in samples(lines):
        key = ";".join([comm] + [f.replace(";", ":") for f in reversed(frames)])
        counts[key] = counts.get(key, 0) + 1
    return "".join(f"{stack} {n}\n" for stack, n in sorted(counts.items()))


def main():
    if sys.argv[1:] == ["--folded"]:
        sys.stdout.write(folded(sys.stdin))
        return
    total, rows = shares(sys.stdin)
    if total == 0:
        sys.exit("no samples on standard input (expected `perf script -F comm,ip,sym` output)")
    sys.stdout.write(table(total, rows))


if __name__ == "__main__":
    main()
