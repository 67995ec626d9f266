//! `loadgen` command line: parse options, do the requested helper action or run the load on a
//! runtime with `--threads` workers, and print the report (text or `--json`).

use anyhow::Context;
use clap::Parser;
use loadgen::{setup, Options};

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    if let Some(dir) = &options.write_demo_config {
        println!("{}", setup::write_demo_config(&options, dir)?);
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads.max(1))
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        if options.wait_ready {
            let ms = setup::wait_ready(&options).await?;
            if options.json {
                println!("{}", serde_json::json!({ "ready_ms": ms }));
            } else {
                println!("ready after {ms:.1} ms");
            }
            return Ok(());
        }
        if options.setup_demo {
            setup::setup_demo(&options).await?;
        }
        if let Some(file) = &options.capture {
            let (status, len) = setup::capture(&options, file).await?;
            println!("HTTP {status}, {len} bytes written to {}", file.display());
            return Ok(());
        }
        let report = loadgen::run(&options).await?;
        let text = if options.json {
            serde_json::to_string_pretty(&report)? + "\n"
        } else {
            report.to_string()
        };
        emit(&text)
    })
}

/// Write the report to stdout; a reader that went away (`| head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
