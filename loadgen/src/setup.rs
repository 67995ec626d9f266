//! Helper actions around a run: write a demo gateway configuration, put the demo consent and
//! handover records in place (so the demo disclosure is a permit), wait for a server to be ready,
//! and capture one response. Prints ids and statuses, never field values.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use devkit::client::MtlsClient;
use devkit::demo::{self, DemoPaths, CLIENT_WITH_CONSENT};
use hyper::Method;

use crate::options::Options;
use crate::target::Target;

/// Write a complete demo configuration into `dir` (see `devkit::demo::write_config`); returns
/// the configuration file's path.
pub fn write_demo_config(options: &Options, dir: &std::path::Path) -> anyhow::Result<String> {
    let paths = DemoPaths {
        certs: options.certs.clone(),
        covenant: options.covenant.clone(),
        data: dir.to_path_buf(),
    };
    let path = demo::write_config(&paths, &options.listen)?;
    Ok(path.display().to_string())
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// As UWV: register the demo client's consent (job mediation → Sociale Dienst Drechtsteden) and
/// store the demo handover records for job mediation and Bijstand intake.
pub async fn setup_demo(options: &Options) -> anyhow::Result<()> {
    let certs = &options.certs;
    let uwv = MtlsClient::builder(&options.ca)
        .identity(certs.join("uwv.pem"), certs.join("uwv-key.pem"))
        .addr(options.addr)
        .server_name(&options.server_name)
        .timeout(options.timeout)
        .build()
        .context("cannot make a client with UWV's certificate")?;

    let now = i64::try_from(unix_now().as_secs()).unwrap_or(i64::MAX);
    let jti = demo::new_consent_id();
    let token = demo::sign_as_uwv(certs, &demo::demo_consent(&jti, CLIENT_WITH_CONSENT, now)?)?;
    let body = serde_json::to_vec(&serde_json::json!({ "token": token }))?;
    let r = uwv
        .send(Method::POST, "/v1/consents", None, Some(body))
        .await
        .context("registering the demo consent")?;
    if r.status != 201 {
        bail!(
            "registering the demo consent: HTTP {} {}",
            r.status,
            r.json()["reason"]
        );
    }

    let intake = serde_json::json!({ "fields": {
        "ww_end_date": "2027-02-28",
        "adviser_contact": "J. de Vries, UWV Dordrecht, 088-8989898"
    }});
    for (purpose, record) in [
        ("job-mediation", demo::demo_handover()),
        ("bijstand-intake", intake),
    ] {
        let body = demo::handover_request(purpose, CLIENT_WITH_CONSENT, &record);
        let r = uwv
            .send(
                Method::POST,
                "/v1/handovers",
                None,
                Some(serde_json::to_vec(&body)?),
            )
            .await
            .with_context(|| format!("storing the {purpose} handover record"))?;
        if !(200..300).contains(&r.status) {
            bail!(
                "storing the {purpose} handover record: HTTP {} {}",
                r.status,
                r.json()["reason"]
            );
        }
    }
    eprintln!("demo set up: consent {jti}, handover records for job-mediation and bijstand-intake");
    Ok(())
}

/// Poll `GET /healthz` until it answers 200; returns the time since `--since-unix-ns` (or since
/// this call) in milliseconds.
pub async fn wait_ready(options: &Options) -> anyhow::Result<f64> {
    let started = Instant::now();
    let since_unix = unix_now();
    let client = MtlsClient::builder(&options.ca)
        .identity(&options.cert, &options.key)
        .addr(options.addr)
        .server_name(&options.server_name)
        .timeout(Duration::from_secs(2))
        .build()?;
    loop {
        if let Ok(r) = client.get("/healthz").await {
            if r.status == 200 {
                break;
            }
        }
        if started.elapsed() > options.timeout {
            bail!(
                "{} did not answer /healthz with 200 within {:?}",
                options.addr,
                options.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let ready_unix = since_unix + started.elapsed();
    let ms = match options.since_unix_ns {
        Some(since) => (ready_unix.as_nanos().saturating_sub(since)) as f64 / 1e6,
        None => started.elapsed().as_secs_f64() * 1000.0,
    };
    Ok(ms)
}

/// Send the configured request once and write the response body to `file`; fails unless the
/// answer is 2xx. Returns the status and the body length.
pub async fn capture(options: &Options, file: &std::path::Path) -> anyhow::Result<(u16, usize)> {
    let target = Target::from_options(options)?;
    let mut conn = None;
    let mut opened = 0;
    let answer = target
        .send(&mut conn, &mut opened)
        .await
        .map_err(|e| anyhow::anyhow!("{}: no answer ({})", target.describe(), e.label()))?;
    std::fs::write(file, &answer.body)
        .with_context(|| format!("cannot write {}", file.display()))?;
    if !(200..300).contains(&answer.status) {
        bail!(
            "{}: HTTP {} ({})",
            target.describe(),
            answer.status,
            crate::target::problem_reason(&answer.body).unwrap_or_default()
        );
    }
    Ok((answer.status, answer.body.len()))
}
