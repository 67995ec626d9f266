//! `poortwachter audit …`: work with the audit log offline. `verify` checks the hash chain and the
//! signed checkpoints of a database or an export and names the first bad record; it only reads.

use std::io::{BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use crate::audit::checkpoint::{CheckpointKeys, CheckpointPublicKey, CheckpointSigner};
use crate::audit::verify::{Head, VerifyOptions, VerifyReport};
use crate::audit::verify_sources::{verify_export, verify_store};
use crate::config::{Config, DatabaseSection, SslMode};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the audit log: every record's hash, the chain linking them and the Ed25519-signed
    /// checkpoints. Detects modified, deleted, inserted and reordered records, a log rewritten with
    /// recomputed hashes (at the next checkpoint) and truncation back to a checkpoint. Truncation
    /// after the latest checkpoint is only detectable with a head kept elsewhere: pass it with
    /// --expect-head (the `head` printed by an earlier run).
    ///
    /// Exits 0 when the log verifies; otherwise prints the first bad record and exits 1. Reads
    /// only: the database is opened read-only.
    Verify(VerifyArgs),
    /// Export the whole audit log as CSV or JSON Lines.
    ///
    /// Streamed in constant memory up to the chain head at the start. JSON Lines carries the
    /// signed checkpoints and verifies with `audit verify --export FILE`; CSV is for spreadsheets
    /// (its checkpoints go to FILE.checkpoints.jsonl when --out is given). The export is itself
    /// recorded in the log.
    Export(super::audit_read::ExportArgs),
    /// The data-subject report: who received what about one person (GDPR art. 15(1)(c)).
    ///
    /// Every disclosure of the person's data — when, to which organisation, which fields,
    /// purpose, legal basis, consent — as JSON, or with --html as a document to hand to the
    /// person. The report is itself recorded in the log.
    Report(super::audit_read::ReportArgs),
    /// Issue 16: the usage report of one organisation, per employee and day (Europe/Amsterdam):
    /// disclosures, refusals, distinct clients, purposes, and signals by the `[usage_review]`
    /// thresholds (outside office hours, many clients, many refusals). As CSV, a printable HTML
    /// page or JSON. The report is itself recorded in the log.
    Usage(super::audit_read::UsageArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The gateway configuration: its database and its checkpoint key.
    #[arg(long, short, env = "POORTWACHTER_CONFIG")]
    pub config: Option<PathBuf>,
    /// The database to verify (`sqlite://…` or `postgres://…`, opened read-only), instead of the
    /// configuration's.
    #[arg(long, conflicts_with = "export")]
    pub database: Option<String>,
    /// With a PostgreSQL --database: the CA certificate (PEM) its server's certificate must
    /// chain to (TLS, verify-full). Default: the configuration's `database.sslrootcert`.
    #[arg(long, requires = "database")]
    pub sslrootcert: Option<PathBuf>,
    /// With a PostgreSQL --database on loopback or a Unix socket only: connect without TLS.
    #[arg(long, requires = "database", conflicts_with = "sslrootcert")]
    pub no_tls_on_loopback: bool,
    /// A JSON Lines export to verify (records, `{"checkpoint":…}` lines) instead of a database.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Trusted checkpoint public key(s) (SPKI PEM, as served at /v1/audit/checkpoint-key).
    /// Default: the key in the configuration.
    #[arg(long = "checkpoint-key")]
    pub checkpoint_keys: Vec<PathBuf>,
    /// A head kept from earlier, `SEQ:sha256:HEX`: the log must still contain it.
    #[arg(long)]
    pub expect_head: Option<Head>,
    /// Accept a log that starts after seq 1 (older records removed by retention, or an export of
    /// a range). The start is reported as anchored by a checkpoint or not.
    #[arg(long)]
    pub allow_pruned: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Hashing threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify(args) => verify(args),
        AuditCommand::Export(args) => super::audit_read::export(args),
        AuditCommand::Report(args) => super::audit_read::report(args),
        AuditCommand::Usage(args) => super::audit_read::usage(args),
    }
}

/// The trusted keys: those given, else the configuration's (current and previous).
fn keys(args: &VerifyArgs, config: Option<&Config>) -> anyhow::Result<CheckpointKeys> {
    let mut keys = Vec::new();
    for path in &args.checkpoint_keys {
        keys.push(CheckpointPublicKey::load(path)?);
    }
    if keys.is_empty() {
        if let Some(c) = config {
            if let Some(path) = &c.audit.checkpoint_key {
                keys.push(CheckpointSigner::load(path)?.public_key().clone());
            }
            for path in &c.audit.checkpoint_previous_keys {
                keys.push(CheckpointPublicKey::load(path)?);
            }
        }
    }
    if keys.is_empty() {
        bail!("no checkpoint key: give --checkpoint-key PUB.pem or --config with audit.checkpoint_key");
    }
    Ok(CheckpointKeys::new(keys))
}

fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let config = args.config.as_deref().map(Config::load).transpose()?;
    let keys = keys(&args, config.as_ref())?;
    let options = VerifyOptions {
        allow_pruned_prefix: args.allow_pruned,
        expect_head: args.expect_head,
        threads: args.threads,
    };
    let started = Instant::now();
    let report = if let Some(path) = &args.export {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut bar = Progress::new(total, "bytes");
        let report = verify_export(BufReader::new(file), keys, options, |n| bar.update(n))?;
        bar.finish();
        report
    } else {
        let database = match (&args.database, &config) {
            (Some(url), config) => {
                let mut database = match config {
                    Some(c) => DatabaseSection {
                        url: url.clone(),
                        ..c.database.clone()
                    },
                    None => DatabaseSection::new(url.clone()),
                };
                if let Some(ca) = &args.sslrootcert {
                    database.sslmode = SslMode::VerifyFull;
                    database.sslrootcert = Some(ca.clone());
                }
                if args.no_tls_on_loopback {
                    database.sslmode = SslMode::Disable;
                }
                database
            }
            (None, Some(c)) => c.database.clone(),
            (None, None) => bail!("give --config, --database or --export"),
        };
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(async {
            // The URL may carry a password: name the backend, not the URL.
            let store = Store::open_read_only(&database)
                .await
                .context("cannot open the database")?;
            let total = store.audit_count().await?;
            let mut bar = Progress::new(total, "records");
            let report = verify_store(&store, keys, options, |n| bar.update(n)).await?;
            bar.finish();
            anyhow::Ok(report)
        })?
    };
    let elapsed = started.elapsed();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, elapsed);
    }
    match &report.problem {
        None => Ok(()),
        Some(p) => bail!("the audit log does not verify: {p}"),
    }
}

fn print_report(r: &VerifyReport, elapsed: Duration) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "records read:        {} in {:.2} s ({:.0} records/s)",
        r.records,
        secs,
        r.records as f64 / secs
    );
    if let (Some(first), Some(last)) = (r.first_seq, r.last_seq) {
        println!("seq:                 {first}..={last}");
    }
    if let Some(start) = r.start {
        println!("start:               {start:?}");
    }
    println!(
        "checkpoints:         {} matched of {} (latest {})",
        r.checkpoints_matched,
        r.checkpoints,
        r.last_checkpoint_seq
            .map_or_else(|| "none".to_owned(), |s| format!("seq {s}"))
    );
    if let Some(found) = r.expected_head_found {
        println!(
            "expected head:       {}",
            if found { "found" } else { "not found" }
        );
    }
    match (&r.problem, r.last_seq, r.head) {
        (None, Some(seq), Some(hash)) => {
            println!(
                "not yet checkpointed: {} record(s) (removing them from the end would go unnoticed without --expect-head)",
                r.unprotected_tail
            );
            println!("head:                {}", Head { seq, hash });
            println!("OK: the audit log verifies");
        }
        (None, _, _) => println!("OK: the audit log is empty"),
        (Some(p), _, _) => {
            println!("FAILED: {}", p.kind.as_str());
            println!("  at seq:  {}", p.seq);
            if let Some(id) = &p.id {
                println!("  record:  {id}");
            }
            if let Some(found) = p.found_seq {
                println!("  claims:  seq {found}");
            }
            if let Some(range) = p.range {
                println!("  range:   seq {}..={}", range.from, range.to);
            }
            println!("  detail:  {}", p.detail);
        }
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal, at most ten times a second.
/// Hand-rolled: one line of `\r` output does not justify a dependency.
struct Progress {
    total: u64,
    unit: &'static str,
    tty: bool,
    started: Instant,
    drawn: Option<Instant>,
}

impl Progress {
    fn new(total: u64, unit: &'static str) -> Self {
        Progress {
            total,
            unit,
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
            drawn: None,
        }
    }

    fn update(&mut self, done: u64) {
        if !self.tty
            || self
                .drawn
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.drawn = Some(Instant::now());
        const WIDTH: usize = 30;
        let fraction = if self.total == 0 {
            0.0
        } else {
            (done as f64 / self.total as f64).min(1.0)
        };
        let filled = (fraction * WIDTH as f64) as usize;
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{}{}] {:>3.0}% {done}/{} {} ({rate:.0}/s)  ",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            fraction * 100.0,
            self.total,
            self.unit,
        );
        let _ = err.flush();
    }

    fn finish(&mut self) {
        if self.tty && self.drawn.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}\r", " ".repeat(80));
            let _ = err.flush();
        }
    }
}
