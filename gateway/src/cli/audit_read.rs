//! `poortwachter audit export` and `poortwachter audit report`: read the audit log on the machine
//! that holds the database and its secrets. Each run is itself recorded in the audit log (as a
//! read by `console:<user>`) before anything is read. Never prints a BSN.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use policy::Bsn;

use crate::audit::export::{self, Export, ExportFormat};
use crate::audit::report::{self, Lang};
use crate::audit::review::{Reader, ReviewError, ReviewFilter};
use crate::config::Config;
use crate::state::AppState;

/// Seqs per checkpoint query when writing a CSV export's checkpoint file.
const CHECKPOINT_WINDOW: i64 = 100_000;
/// Attempts to record the read while a running gateway appends to the same log.
const ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// One row per record, for spreadsheets (cells that look like formulas get a leading ').
    Csv,
    /// One record per line as stored, with the signed checkpoints: verifiable offline with
    /// `poortwachter audit verify --export FILE`.
    Jsonl,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LangArg {
    /// Dutch.
    Nl,
    /// English.
    En,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The gateway configuration (its database, secrets and checkpoint key).
    #[arg(long, short, env = "POORTWACHTER_CONFIG")]
    pub config: PathBuf,
    /// The export format.
    #[arg(long, value_enum)]
    pub format: FormatArg,
    /// Write to this file instead of standard output. With csv, the checkpoints that verify the
    /// export go to FILE.checkpoints.jsonl.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The gateway configuration (its database, secrets, organisations and covenants).
    #[arg(long, short, env = "POORTWACHTER_CONFIG")]
    pub config: PathBuf,
    /// The person's BSN. Give `-` to read it from standard input, which keeps it out of the
    /// shell history and the process list.
    #[arg(long)]
    pub bsn: String,
    /// A readable HTML document to hand to the person, instead of JSON.
    #[arg(long)]
    pub html: bool,
    /// The language of the HTML document.
    #[arg(long, value_enum, default_value = "nl")]
    pub lang: LangArg,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

fn console_reader() -> Reader {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    Reader::console(&user)
}

/// Start the gateway state (database, secrets, audit writer) from a configuration file.
async fn open(config: &Path) -> anyhow::Result<(AppState, tokio::task::JoinHandle<()>)> {
    let config = Config::load(config)?;
    Ok(crate::boot::build(config).await?)
}

/// Let the audit writer finish: drop the last handle, then wait for it.
async fn close(state: AppState, writer: tokio::task::JoinHandle<()>) {
    drop(state);
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
}

fn output(out: Option<&Path>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match out {
        Some(p) => Box::new(BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    })
}

/// Retry when a running gateway appended first: the writer re-reads the head after a conflict.
async fn with_retry<T, F, Fut>(mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ReviewError>>,
{
    for attempt in 1..=ATTEMPTS {
        match f().await {
            Err(ReviewError::AuditUnavailable) if attempt < ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
            }
            Err(ReviewError::AuditUnavailable) => {
                bail!("the read could not be recorded in the audit log, so nothing was read")
            }
            other => return Ok(other?),
        }
    }
    bail!("the read could not be recorded in the audit log, so nothing was read")
}

pub fn export(args: ExportArgs) -> anyhow::Result<()> {
    let format = match args.format {
        FormatArg::Csv => ExportFormat::Csv,
        FormatArg::Jsonl => ExportFormat::Jsonl,
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (state, writer) = open(&args.config).await?;
        let reader = console_reader();
        let filter = ReviewFilter::default();
        let result = async {
            let mut export: Export =
                with_retry(|| export::begin(&state, &reader, &filter, format)).await?;
            let mut out = output(args.out.as_deref())?;
            let mut records = 0u64;
            while let Some(chunk) = export.next_chunk().await? {
                records += chunk.iter().filter(|b| **b == b'\n').count() as u64;
                out.write_all(&chunk)?;
            }
            out.flush()?;
            let mut note = String::new();
            if let (ExportFormat::Csv, Some(path)) = (format, &args.out) {
                let mut cp_path = path.clone().into_os_string();
                cp_path.push(".checkpoints.jsonl");
                let cp_path = PathBuf::from(cp_path);
                let n = write_checkpoints(&state, export.through, &cp_path).await?;
                note = format!("; {n} checkpoint(s) in {}", cp_path.display());
            }
            eprintln!(
                "exported the audit log through seq {} ({} lines){note}",
                export.through, records
            );
            anyhow::Ok(())
        }
        .await;
        close(state, writer).await;
        result
    })
}

/// The checkpoints over seq 1..=`through`, as export lines, paged by seq.
async fn write_checkpoints(state: &AppState, through: i64, path: &Path) -> anyhow::Result<u64> {
    let mut out = output(Some(path))?;
    let mut count = 0;
    let mut from = 1;
    while from <= through {
        let to = (from + CHECKPOINT_WINDOW - 1).min(through);
        for cp in state.store.audit_checkpoints(from, to).await? {
            writeln!(
                out,
                "{}",
                crate::audit::verify_sources::checkpoint_line(&cp)
            )?;
            count += 1;
        }
        from = to + 1;
    }
    out.flush()?;
    Ok(count)
}

fn read_bsn(arg: &str) -> anyhow::Result<Bsn> {
    let text = if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .take(64)
            .read_to_string(&mut s)
            .context("cannot read the BSN from standard input")?;
        s
    } else {
        arg.to_owned()
    };
    // The message never repeats the input: it may be a (mistyped) BSN.
    text.trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("--bsn: a BSN is 9 digits and passes the 11-check"))
}

pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    let bsn = read_bsn(&args.bsn)?;
    let lang = match args.lang {
        LangArg::Nl => Lang::Nl,
        LangArg::En => Lang::En,
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (state, writer) = open(&args.config).await?;
        let reader = console_reader();
        let result = async {
            let report = with_retry(|| report::build(&state, &reader, &bsn)).await?;
            let mut out = output(args.out.as_deref())?;
            if args.html {
                out.write_all(report::render_html(&report, lang).as_bytes())?;
            } else {
                serde_json::to_writer_pretty(&mut out, &report)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            eprintln!(
                "report on {}: {} disclosure(s)",
                report.subject,
                report.disclosures.len()
            );
            anyhow::Ok(())
        }
        .await;
        close(state, writer).await;
        result
    })
}

// --- issue 16: the usage review ---

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum UsageFormatArg {
    /// One row per employee and day.
    Csv,
    /// A plain, printable page (Dutch labels).
    Html,
    /// The rows as JSON.
    Json,
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// The gateway configuration (its database, secrets and `[usage_review]` thresholds).
    #[arg(long, short, env = "POORTWACHTER_CONFIG")]
    pub config: PathBuf,
    /// The organisation (OIN) whose employees' requests are reported.
    #[arg(long)]
    pub org: policy::Oin,
    /// The first day (YYYY-MM-DD, Europe/Amsterdam).
    #[arg(long)]
    pub from: chrono::NaiveDate,
    /// The last day (YYYY-MM-DD, Europe/Amsterdam), included.
    #[arg(long)]
    pub to: chrono::NaiveDate,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: UsageFormatArg,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// `poortwachter audit usage`: the per-employee usage report of one organisation.
pub fn usage(args: UsageArgs) -> anyhow::Result<()> {
    use crate::audit::usage;
    if args.to < args.from {
        bail!("--to: on or after --from");
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (state, writer) = open(&args.config).await?;
        let reader = console_reader();
        let result = async {
            let rows =
                with_retry(|| usage::build(&state, &reader, &args.org, args.from, args.to)).await?;
            let cfg = &state.config.usage_review;
            let text = match args.format {
                UsageFormatArg::Csv => usage::csv(&rows),
                UsageFormatArg::Html => {
                    usage::html(&rows, args.org.as_str(), args.from, args.to, cfg)
                }
                UsageFormatArg::Json => serde_json::to_string_pretty(&rows)? + "\n",
            };
            let mut out = output(args.out.as_deref())?;
            out.write_all(text.as_bytes())?;
            out.flush()?;
            eprintln!("usage report of {}: {} row(s)", args.org, rows.len());
            anyhow::Ok(())
        }
        .await;
        close(state, writer).await;
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsn_errors_do_not_repeat_the_input() {
        assert!(read_bsn("111222333").is_ok());
        let msg = read_bsn("111222334").unwrap_err().to_string();
        assert!(!msg.contains("111222334"), "{msg}");
    }
}
