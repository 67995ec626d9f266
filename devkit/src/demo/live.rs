//! DEVELOPMENT ONLY. The live-disclosure part of the demo (issue 18): the reference source's
//! configuration and records (UWV's demo data, with dates relative to today so the selection
//! rule has something to select), and the gateway configuration that adds the source, the
//! gateway's client certificate and the live covenant signed by both parties.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{Days, Utc};
use jsonwebtoken::Algorithm;
use policy::{Covenant, DocumentFormat, Oin};

use super::{DemoPaths, CLIENT_WITHOUT_CONSENT, CLIENT_WITH_CONSENT, SDD, UWV};
use crate::certs::GATEWAY_OIN;
use crate::sign;

/// The live covenant in a checkout.
pub fn live_covenant(root: &Path) -> PathBuf {
    root.join("schemas/examples/covenant-drechtsteden-live.toml")
}

/// UWV's demo records as the reference source holds them: the demo client's WW ends in 45 days
/// and the partner earns below the norm (invite); the other client's WW ends in 200 days and the
/// partner earns above it.
pub fn source_records() -> serde_json::Value {
    let today = Utc::now().date_naive();
    let in_days = |n: u64| {
        today
            .checked_add_days(Days::new(n))
            .unwrap_or(today)
            .format("%Y-%m-%d")
            .to_string()
    };
    let mut first = super::demo_handover()["fields"].clone();
    first["ww_end_date"] = in_days(45).into();
    first["partner_income_monthly"] = 1450.into();
    first["birth_date"] = "1984-03-12".into();
    serde_json::json!({ "records": [
        { "subject": CLIENT_WITH_CONSENT, "fields": first },
        { "subject": CLIENT_WITHOUT_CONSENT, "fields": {
            "ww_end_date": in_days(200),
            "adviser_contact": "A. Jansen, UWV Dordrecht, 088-8989898",
            "partner_income_monthly": 2600,
            "birth_date": "2001-07-30"
        }}
    ]})
}

/// Write the reference source's configuration (listening on `listen`, answering only the
/// gateway's certificate) and records into `paths.data`; `fault` (TEST ONLY) makes it misbehave
/// (`hang`, `garbage`, `wrong-subject`, `over-deliver`, `wrong-type`). Returns the file.
pub fn write_source_config(
    paths: &DemoPaths,
    name: &str,
    listen: &str,
    fault: Option<&str>,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&paths.data)?;
    let certs = paths.certs.canonicalize().context("certificates")?;
    crate::certs::ensure_gateway_client(&certs)?;
    let data = paths.data.canonicalize()?;
    let records = data.join(format!("{name}-records.json"));
    std::fs::write(&records, serde_json::to_vec_pretty(&source_records())?)?;
    let c = certs.display();
    let fault = fault.map_or(String::new(), |f| {
        format!("# TEST ONLY: this source misbehaves on purpose.\nfault = \"{f}\"\n")
    });
    let text = format!(
        r#"# The reference source (UWV side) for the demo: development certificates only.
listen = "{listen}"
allowed_clients = ["{GATEWAY_OIN}"]
data = "{records}"
{fault}
[tls]
cert = "{c}/server.pem"
key = "{c}/server-key.pem"
client_ca = "{c}/ca.pem"
"#,
        records = records.display()
    );
    let path = data.join(format!("{name}.toml"));
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Append to the gateway configuration at `config`: the gateway's client certificate, UWV's
/// source at `source`, and the live covenant (`covenant`) signed by UWV and the Sociale Dienst.
pub fn add_live_source(
    paths: &DemoPaths,
    config: &Path,
    covenant: &Path,
    source: SocketAddr,
) -> anyhow::Result<()> {
    let certs = paths.certs.canonicalize().context("certificates")?;
    let data = paths.data.canonicalize()?;
    let text = std::fs::read_to_string(covenant)
        .with_context(|| format!("cannot read {}", covenant.display()))?;
    let parsed = Covenant::parse(&text, DocumentFormat::Toml)
        .map_err(|e| anyhow::anyhow!("{}: {e}", covenant.display()))?;
    let copy = data.join("covenant-live.toml");
    std::fs::write(&copy, &text)?;
    let mut signatures = Vec::new();
    for (party, file, kid, alg) in [
        (UWV, "uwv", "uwv-covenant-1", Algorithm::ES256),
        (SDD, "sdd", "sdd-covenant-1", Algorithm::EdDSA),
    ] {
        let key = sign::load_key(&certs.join(format!("covenant-keys/{file}.key.pem")), alg)?;
        let party: Oin = party.parse()?;
        let jws = sign::covenant(&parsed, &party, kid, alg, &key)?;
        let path = data.join(format!("covenant-live.{file}.sig"));
        std::fs::write(&path, jws)?;
        signatures.push(format!("\"{}\"", path.display()));
    }
    let c = certs.display();
    let mut config_text = std::fs::read_to_string(config)?;
    config_text.push_str(&format!(
        r#"
[[covenants]]
file = "{copy}"
signatures = [{sigs}]

# Live disclosure: UWV's own service, asked after each permit under a live grant.
[source_client]
cert = "{c}/gateway-client.pem"
key = "{c}/gateway-client-key.pem"

[[sources]]
oin = "{UWV}"
url = "https://127.0.0.1:{port}"
ca = "{c}/ca.pem"
server_name = "localhost"
connect_timeout_ms = 1000
answer_timeout_ms = 2000
"#,
        copy = copy.display(),
        sigs = signatures.join(", "),
        port = source.port(),
    ));
    std::fs::write(config, config_text)?;
    Ok(())
}

/// What the live part of the guided demo showed (for its test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOutcome {
    /// The HTTP status of the live disclosure of the WW end date.
    pub live_status: u16,
    /// The selection rule's answer for the demo client and for the other client.
    pub invited: (bool, bool),
    /// The `reason` after the source was stopped.
    pub stopped_reason: String,
}

/// The live part of the guided demo against a gateway on `port` whose UWV source is running:
/// a live disclosure, the selection rule from derived attributes, and a refusal after
/// `stop_source` has stopped the source.
pub async fn run_live_scenario(
    certs: &Path,
    port: u16,
    stop_source: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<LiveOutcome> {
    let sdd = super::client(certs, "sdd", port)?;
    let r = super::scenario::ask(
        &sdd,
        "ww-end-signal",
        CLIENT_WITH_CONSENT,
        &["ww_end_date", "adviser_contact"],
    )
    .await?;
    super::scenario::show(
        "16. LIVE: the Sociale Dienst asks for the current WW end date; the gateway asks UWV's own service for exactly these two fields and keeps nothing",
        &r,
    );
    let live_status = r.status;

    let rule = ["ww_ends_within_3_months", "partner_income_above_norm"];
    let mut invited = [false, false];
    for (i, (bsn, who)) in [
        (CLIENT_WITH_CONSENT, "the demo client"),
        (CLIENT_WITHOUT_CONSENT, "another client"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = super::scenario::ask(&sdd, "max-ww-invitation", bsn, &rule).await?;
        super::scenario::show(
            &format!("{}. DERIVED: the invitation selection for {who}: two yes/no answers, never the end date or the partner's income", 17 + i),
            &r,
        );
        let v = r.json();
        invited[i] = v["released"]["ww_ends_within_3_months"] == true
            && v["released"]["partner_income_above_norm"] == false;
        println!(
            "   selection rule (WW ends within three months and partner income not above the norm): {}",
            if invited[i] { "INVITE" } else { "do not invite" }
        );
    }

    stop_source()?;
    let r =
        super::scenario::ask(&sdd, "ww-end-signal", CLIENT_WITH_CONSENT, &["ww_end_date"]).await?;
    super::scenario::show(
        "19. REFUSED: UWV's service is stopped; the gateway refuses (audited) rather than answer from a copy",
        &r,
    );
    Ok(LiveOutcome {
        live_status,
        invited: (invited[0], invited[1]),
        stopped_reason: r.json()["reason"].as_str().unwrap_or("").to_owned(),
    })
}
