"""Tests of bench/report.py: the figures and verdicts it writes into BENCHMARKS.md from a results
directory like the one bench/compare.sh fills, and that it replaces only its own section.

Run: python3 -m unittest discover -s bench (tests/run-all.sh does).
"""

import json
import pathlib
import tempfile
import unittest

import report

LSCPU = "Model name: Test CPU\nCPU(s): 2\nHypervisor vendor: KVM\n"


def latency(p50, p99):
    return {"p50": p50, "p90": p50 * 2, "p99": p99, "p999": p99 * 2}


def run_report(total, elapsed, rps, p50=1.0, p99=2.0):
    return {
        "throughput_rps": rps,
        "total_requests": total,
        "elapsed_s": elapsed,
        "latency_ms": latency(p50, p99),
        "errors": 0,
        "failures": [],
        "transport_errors": {},
    }


def cpu(server_ticks, steal_ticks, generator_s=0.5):
    return {
        "server_ticks": server_ticks,
        "clk_tck": 100,
        "generator_user_s": generator_s,
        "generator_sys_s": 0.0,
        "steal_ticks": steal_ticks,
    }


def metrics_text(waits, commits):
    """/metrics with the two audit histograms; each argument maps `le` to a cumulative count."""
    lines = ["# TYPE poortwachter_audit_wait_duration_seconds histogram"]
    for name, buckets in (("poortwachter_audit_wait_duration_seconds", waits),
                          ("poortwachter_audit_commit_duration_seconds", commits)):
        for le, count in buckets.items():
            lines.append(f'{name}_bucket{{le="{le}"}} {count}')
        lines.append(f"{name}_count {buckets['+Inf']}")
    return "\n".join(lines)


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.results = pathlib.Path(self.dir.name)
        self.write("settings.txt", "DURATION=10s WARMUP=2s CONCURRENCY=32 RATE=1000 THREADS=1")
        self.write("lscpu.txt", LSCPU)
        self.write("commit.txt", "abc1234")
        self.write("body-bytes.txt", "690")
        self.write("postgres.status", "not run")
        # nginx: 100,000 requests in 10 s; 3 s of server CPU = 30 µs per request.
        self.server("nginx", run_report(100_000, 10.0, 10_000.0, 0.5, 1.5), cpu(300, 40),
                    run_report(12_000, 12.0, 1_000.0, 0.3, 2.0), rate_steal=24, rss_kb=27000,
                    ready_ms=30)
        # gateway: 20,000 disclosures in 10 s (0.2 × nginx) at 250 µs each.
        self.server("sqlite", run_report(20_000, 10.0, 2_000.0, 5.0, 12.0), cpu(500, 200),
                    run_report(12_000, 12.0, 1_000.0, 1.2, 6.5), rate_steal=480, rss_kb=24000,
                    ready_ms=40)
        self.write_json("sqlite-audit.json", {"before": 5, "after": 20_005})

    def tearDown(self):
        self.dir.cleanup()

    def server(self, name, throughput, throughput_cpu, rate, rate_steal, rss_kb, ready_ms):
        """The files compare.sh's `drive` and `wait_ready` leave for one server."""
        self.write_json(f"{name}-throughput.json", throughput)
        self.write_json(f"{name}-cpu.json", throughput_cpu)
        self.write_json(f"{name}-rate.json", rate)
        self.write(f"{name}-rate-steal.ticks", str(rate_steal))
        self.write(f"{name}-rss-at-rate.kb", str(rss_kb))
        self.write(f"{name}-hwm.kb", str(rss_kb))
        self.write(f"{name}-ready.ms", str(ready_ms))

    def write(self, name, text):
        (self.results / name).write_text(text + "\n")

    def write_json(self, name, value):
        self.write(name, json.dumps(value))

    def row(self, text, label):
        lines = [line for line in text.splitlines() if line.startswith(f"| {label}")]
        self.assertEqual(len(lines), 1, f"one row starting with {label!r}")
        return [cell.strip() for cell in lines[0].strip("|").split("|")]

    def test_throughput_ratio_and_unmet_target(self):
        text = report.section(self.results)
        cells = self.row(text, "throughput at concurrency 32")
        self.assertEqual(cells[1:], ["10,000", "2,000", "0.20×", "≥ 0.5 × nginx", "**no**"])

    def test_cpu_per_request_and_latency_verdict(self):
        text = report.section(self.results)
        self.assertEqual(self.row(text, "server CPU time per request")[1:4], ["30.0", "250.0", "8.3×"])
        self.assertEqual(self.row(text, "latency at 1000 req/s")[5], "**no**")  # p99 6.5 > 5 ms
        self.assertEqual(self.row(text, "audit records/s")[3:], ["1.000", "≥ 1", "yes"])

    def test_stack_alone_is_reported_and_subtracted_from_the_disclosure(self):
        self.write_json("nginx-healthz.json", run_report(120_000, 10.0, 12_000.0))
        self.write_json("nginx-healthz-cpu.json", cpu(360, 0))  # 30 µs per request
        self.write_json("sqlite-healthz.json", run_report(90_000, 10.0, 9_000.0))
        self.write_json("sqlite-healthz-cpu.json", cpu(360, 0))  # 40 µs per request
        text = report.section(self.results)
        self.assertEqual(self.row(text, "the TLS and HTTP stack alone")[1:4],
                         ["12,000", "9,000", "0.75×"])
        self.assertEqual(self.row(text, "server CPU time per `/healthz`")[1:4], ["30.0", "40.0", "1.3×"])
        self.assertIn("Of the gateway's 250.0 µs of CPU time per disclosure, 40.0 µs", text)
        self.assertIn("the rest, 210.0 µs, is the disclosure's own work", text)
        self.assertIn("The stack alone reaches 0.75× of nginx's", text)

    def test_the_yardstick_is_cpu_per_disclosure_over_cpu_per_empty_request(self):
        self.write_json("sqlite-healthz.json", run_report(90_000, 10.0, 9_000.0))
        self.write_json("sqlite-healthz-cpu.json", cpu(360, 0))  # 40 µs per request
        cells = self.row(report.section(self.results), "**the yardstick**")
        self.assertEqual(cells[2:], ["6.25× (250.0 ÷ 40.0 µs)", "", "≤ 1.6×", "**no**"])
        # 60 µs per disclosure over 40 µs per empty request: within the limit.
        self.server("sqlite", run_report(20_000, 10.0, 2_000.0, 5.0, 12.0), cpu(120, 0),
                    run_report(12_000, 12.0, 1_000.0, 1.2, 6.5), rate_steal=0, rss_kb=24000,
                    ready_ms=40)
        cells = self.row(report.section(self.results), "**the yardstick**")
        self.assertEqual(cells[2:], ["1.50× (60.0 ÷ 40.0 µs)", "", "≤ 1.6×", "yes"])

    def test_postgres_line_carries_its_own_yardstick(self):
        self.write("postgres.status", "measured")
        self.server("postgres", run_report(10_000, 10.0, 1_000.0), cpu(400, 0),
                    run_report(12_000, 12.0, 1_000.0), rate_steal=0, rss_kb=25000, ready_ms=90)
        self.write_json("postgres-healthz.json", run_report(50_000, 10.0, 5_000.0))
        self.write_json("postgres-healthz-cpu.json", cpu(100, 0))  # 20 µs per request
        self.assertIn("CPU per disclosure ÷ per `/healthz` 20.00× (400.0 ÷ 20.0 µs)",
                      report.section(self.results))

    def test_without_healthz_results_the_rows_say_so_and_nothing_is_subtracted(self):
        text = report.section(self.results)
        self.assertEqual(self.row(text, "the TLS and HTTP stack alone")[1:3], ["—", "—"])
        self.assertNotIn("Of the gateway's", text)

    def test_steal_time_is_a_share_of_both_vcpus_over_each_run(self):
        text = report.section(self.results)
        # nginx: 40 ticks over 10 s × 100 ticks/s × 2 CPUs = 2 %; rate run 24 over 12 s = 1 %.
        # gateway: 200 ticks = 10 %; rate run 480 ticks over 12 s = 20 %.
        self.assertEqual(self.row(text, "CPU time stolen by the hypervisor")[1:3], ["2; 1", "10; 20"])

    def test_audit_waits_over_5_ms_are_counted_over_the_rate_run(self):
        self.write("sqlite-metrics-before-rate.txt", metrics_text(
            {"0.001": 50, "0.005": 90, "0.01": 99, "+Inf": 100},
            {"0.001": 40, "0.005": 78, "0.01": 80, "+Inf": 80}))
        # The rate run: 12,000 waits, 11,700 of them within 5 ms; 10,000 commits, 9,990 within.
        self.write("sqlite-metrics-after-rate.txt", metrics_text(
            {"0.001": 9_050, "0.005": 11_790, "0.01": 11_950, "+Inf": 12_100},
            {"0.001": 9_040, "0.005": 10_068, "0.01": 10_075, "+Inf": 10_080}))
        text = report.section(self.results)
        self.assertEqual(self.row(text, "waits over 5 ms for the audit record")[1:3],
                         ["—", "300 of 12,000 requests (2.5 %); 10 of 10,000 commits"])
        self.assertIn("the audit-wait row counts those requests", text)

    def test_without_the_gateways_metrics_the_audit_wait_row_says_so(self):
        text = report.section(self.results)
        self.assertEqual(self.row(text, "waits over 5 ms for the audit record")[1:3], ["—", "—"])
        self.assertNotIn("the audit-wait row counts", text)

    def test_only_the_compare_section_is_replaced(self):
        target = self.results / "BENCHMARKS.md"
        target.write_text(f"# Benchmarks\n\nbefore\n\n{report.START}\nold figures\n{report.END}\n\nafter\n")
        report.write(self.results, target)
        text = target.read_text()
        self.assertTrue(text.startswith("# Benchmarks\n\nbefore\n\n" + report.START))
        self.assertTrue(text.endswith(report.END + "\n\nafter\n"))
        self.assertNotIn("old figures", text)
        self.assertEqual(text.count(report.START), 1)


if __name__ == "__main__":
    unittest.main()
