"""Tests of bench/breakdown.py: which samples of `perf script` output count for which cost, and
the folded stacks it writes for flamegraph tools.

Run: python3 -m unittest discover -s bench (tests/run-all.sh does).
"""

import unittest

import breakdown

# Four samples in `perf script -F comm,ip,sym` form: thread name, then frames leaf first.
SCRIPT = """\
audit-writer 
\tffffffff81 do_fsync
\t      1234 unixSync
\t      1235 sqlite3VdbeHalt
\t      1236 gateway::store::sqlite_direct::DirectWriter::append_chained

audit-writer 
\t      2234 sqlite3BtreeInsert
\t      2235 gateway::store::sqlite_direct::insert_record (inlined)
\t      2236 gateway::store::sqlite_direct::DirectWriter::append_chained

tokio-rt-worker 
\t      3234 serde_json::de::from_slice
\t      3235 gateway::disclosure::open_consents
\t      3236 gateway::disclosure::disclose::{{closure}}
\t      3237 hyper::proto::h1::dispatch::Dispatcher<D>::poll_catch

tokio-rt-worker 
\t      4234 ring::aead::seal
\t      4235 rustls::record_layer::RecordLayer::encrypt_outgoing
\t      4236 hyper::proto::h1::dispatch::Dispatcher<D>::poll_catch
"""


def share(rows, label):
    return dict(rows)[label]


class BreakdownTest(unittest.TestCase):
    def test_every_sample_is_read_with_its_thread_and_frames(self):
        parsed = list(breakdown.samples(SCRIPT.splitlines(keepends=True)))
        self.assertEqual([comm for comm, _ in parsed],
                         ["audit-writer", "audit-writer", "tokio-rt-worker", "tokio-rt-worker"])
        self.assertEqual(parsed[1][1][1], "gateway::store::sqlite_direct::insert_record")

    def test_costs_are_counted_inclusively_per_sample(self):
        total, rows = breakdown.shares(SCRIPT.splitlines(keepends=True))
        self.assertEqual(total, 4)
        self.assertEqual(share(rows, "audit writer thread, all of it"), 50.0)
        self.assertEqual(share(rows, "— — `fsync` of the WAL"), 25.0)
        self.assertEqual(share(rows, "— the audit INSERT (row and record JSON)"), 25.0)
        self.assertEqual(share(rows, "request handler `disclose`"), 25.0)
        self.assertEqual(share(rows, "— opening consents (AES-GCM + claims JSON)"), 25.0)
        self.assertEqual(share(rows, "JSON anywhere (`serde_json`)"), 25.0)
        self.assertEqual(share(rows, "TLS (`rustls`: records, the connection's AES-GCM)"), 25.0)

    def test_the_connection_row_leaves_out_samples_inside_the_handler(self):
        _, rows = breakdown.shares(SCRIPT.splitlines(keepends=True))
        # Both worker samples run under hyper's dispatcher; only the TLS one is outside `disclose`.
        self.assertEqual(share(rows, "the connection outside the handler (HTTP, TLS, socket I/O)"),
                         25.0)

    def test_thread_bound_rows_ignore_other_threads(self):
        script = "tokio-rt-worker \n\t      1 unixSync\n\t      2 sqlite3VdbeHalt\n"
        _, rows = breakdown.shares(script.splitlines(keepends=True))
        self.assertEqual(share(rows, "— — `fsync` of the WAL"), 0.0)

    def test_allocator_time_is_counted_for_mimalloc_and_glibc(self):
        script = ("tokio-rt-worker \n\t      1 _mi_page_malloc_zero\n\t      2 mi_theap_malloc\n"
                  "\t      3 serde_json::de::from_slice\n\n"
                  "tokio-rt-worker \n\t      1 _int_free\n\t      2 __GI___libc_free\n\n"
                  "tokio-rt-worker \n\t      1 gateway::http::emit\n\n"
                  "tokio-rt-worker \n\t      1 ring::aead::seal\n")
        _, rows = breakdown.shares(script.splitlines(keepends=True))
        self.assertEqual(share(rows, "`malloc` / `free` (mimalloc, or glibc)"), 50.0)

    def test_folded_stacks_are_root_first_and_counted(self):
        folded = breakdown.folded((SCRIPT + "\n" + SCRIPT).splitlines(keepends=True))
        lines = folded.splitlines()
        self.assertEqual(len(lines), 4)
        self.assertIn("audit-writer;gateway::store::sqlite_direct::DirectWriter::append_chained;"
                      "sqlite3VdbeHalt;unixSync;do_fsync 2", lines)


if __name__ == "__main__":
    unittest.main()
