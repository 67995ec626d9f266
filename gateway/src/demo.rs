//! `poortwachter demo`: a complete local setup on the embedded default — example certificates, the
//! Drechtsteden covenant signed by both parties, fresh secrets, a SQLite database — and a guided
//! run that shows disclosures granted and refused. The same setup serves the end-to-end tests.
//! The demo prints organisation names, field names and decisions; BSNs only as `*******33`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use jsonwebtoken::Algorithm;
use policy::{ConsentClaims, Covenant, DocumentFormat, Evidence, Oin};

use crate::config::Config;
use devkit::client::{ClientResponse, MtlsClient};

pub const UWV: &str = "00000001003214345000";
pub const SDD: &str = "00000001823288444000";
pub const GORINCHEM: &str = "00000001001234567000";
pub const GATEWAY_ID: &str = "poortwachter-drechtsteden";
/// Demo clients: BSNs that pass the 11-check (made up).
pub const CLIENT_WITH_CONSENT: &str = "111222333";
pub const CLIENT_WITHOUT_CONSENT: &str = "123456782";

/// Where the demo's inputs live in a checkout.
#[derive(Debug, Clone)]
pub struct DemoPaths {
    pub certs: PathBuf,
    pub covenant: PathBuf,
    pub data: PathBuf,
}

impl DemoPaths {
    /// Paths relative to the repository root `root`, with data in `data`.
    pub fn in_repo(root: &Path, data: &Path) -> Self {
        DemoPaths {
            certs: root.join("certs-example"),
            covenant: root.join("schemas/examples/covenant-drechtsteden.toml"),
            data: data.to_path_buf(),
        }
    }
}

/// Write the demo configuration (and covenant signatures and secrets) into `paths.data`.
/// Returns the configuration file's path. Existing secrets are kept, so a restart reads the same
/// database.
pub fn write_config(paths: &DemoPaths, listen: &str) -> anyhow::Result<PathBuf> {
    let data = &paths.data;
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    if !paths.certs.join("ca.pem").exists() {
        devkit::certs::generate(&paths.certs)?;
    }
    let certs = paths
        .certs
        .canonicalize()
        .with_context(|| format!("cannot find {}", paths.certs.display()))?;
    let data = data.canonicalize()?;

    for name in ["kek.b64", "pseudonym-key.b64"] {
        let p = data.join(name);
        if !p.exists() {
            let key = crate::crypto::random_bytes(32)?;
            std::fs::write(&p, base64::engine::general_purpose::STANDARD.encode(key))?;
        }
    }

    // Both parties sign the example covenant with their covenant keys.
    let text = std::fs::read_to_string(&paths.covenant)
        .with_context(|| format!("cannot read {}", paths.covenant.display()))?;
    let covenant = Covenant::parse(&text, DocumentFormat::Toml)
        .map_err(|e| anyhow::anyhow!("{}: {e}", paths.covenant.display()))?;
    std::fs::write(data.join("covenant.toml"), &text)?;
    let mut signatures = Vec::new();
    for (party, file, kid, alg) in [
        (UWV, "uwv", "uwv-covenant-1", Algorithm::ES256),
        (SDD, "sdd", "sdd-covenant-1", Algorithm::EdDSA),
    ] {
        let key =
            crate::keys::load_private(&certs.join(format!("covenant-keys/{file}.key.pem")), alg)?;
        let party: Oin = party.parse()?;
        let jws = crate::covenant_sig::sign(&covenant, &party, kid, alg, &key)?;
        let path = data.join(format!("covenant.{file}.sig"));
        std::fs::write(&path, jws)?;
        signatures.push(format!("\"{}\"", path.display()));
    }

    let c = certs.display();
    let d = data.display();
    let config = format!(
        r#"# poortwachter demo configuration (development certificates: never use in production)
[gateway]
id = "{GATEWAY_ID}"
listen = "{listen}"

[tls]
cert = "{c}/server.pem"
key = "{c}/server-key.pem"
client_ca = "{c}/ca.pem"
crls = ["{c}/crl.pem"]

[database]
url = "sqlite://{d}/poortwachter.db"

[secrets]
kek = {{ file = "{d}/kek.b64", env = "POORTWACHTER_KEK" }}
pseudonym_key = {{ file = "{d}/pseudonym-key.b64", env = "POORTWACHTER_PSEUDONYM_KEY" }}

[audit]
# Signs checkpoints over the audit chain head; the public half is served at
# /v1/audit/checkpoint-key and in {c}/audit/checkpoint-ed25519.pub.pem.
checkpoint_key = "{c}/audit/checkpoint-ed25519.key.pem"

[[organisations]]
oin = "{UWV}"
name = "UWV"
consent_keys = [{{ kid = "uwv-consent-1", alg = "ES256", file = "{c}/consent-keys/uwv-es256.pub.pem" }}]
covenant_keys = [{{ kid = "uwv-covenant-1", alg = "ES256", file = "{c}/covenant-keys/uwv.pub.pem" }}]

[[organisations]]
oin = "{SDD}"
name = "Sociale Dienst Drechtsteden"
consent_keys = [{{ kid = "sdd-consent-1", alg = "EdDSA", file = "{c}/consent-keys/sdd-ed25519.pub.pem" }}]
covenant_keys = [{{ kid = "sdd-covenant-1", alg = "EdDSA", file = "{c}/covenant-keys/sdd.pub.pem" }}]

[[organisations]]
oin = "{GORINCHEM}"
name = "Gemeente Gorinchem"
consent_keys = [{{ kid = "gorinchem-consent-1", alg = "ES256", file = "{c}/consent-keys/gorinchem-es256.pub.pem" }}]

[[human_issuers]]
issuer = "https://login.poortwachter.example"
audience = "{GATEWAY_ID}"
keys = [{{ kid = "issuer-1", alg = "ES256", file = "{c}/jwt-issuer/issuer.pub.pem" }}]

[[covenants]]
file = "{d}/covenant.toml"
signatures = [{sigs}]
"#,
        sigs = signatures.join(", ")
    );
    let path = data.join("poortwachter.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

/// Consent claims for the demo client: job mediation, to the Sociale Dienst, for most
/// job-readiness fields, valid from an hour ago for a year.
pub fn demo_consent(jti: &str, subject: &str, now: i64) -> anyhow::Result<ConsentClaims> {
    Ok(ConsentClaims {
        iss: UWV.parse()?,
        sub: subject.parse()?,
        aud: GATEWAY_ID.into(),
        jti: jti.parse()?,
        iat: now - 3600,
        nbf: now - 3600,
        exp: now + 365 * 24 * 3600,
        purpose: "job-mediation".parse()?,
        recipients: vec![SDD.parse()?],
        fields: [
            "available_hours_per_week",
            "own_transport",
            "driving_licence",
            "childcare_arranged",
            "education_level",
            "job_ready",
            "wage_value_band",
            "ww_end_date",
            "adviser_contact",
        ]
        .iter()
        .map(|f| f.parse())
        .collect::<Result<_, _>>()?,
        covenant: "drechtsteden-max-ww".parse()?,
        evidence: Evidence {
            method: "signed-paper-form".into(),
            document_sha256: "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"
                .into(),
            recorded_by: "uwv-adviser-4711".into(),
        },
    })
}

/// Sign claims with UWV's demo consent key.
pub fn sign_as_uwv(certs: &Path, claims: &ConsentClaims) -> anyhow::Result<String> {
    let key = crate::keys::load_private(
        &certs.join("consent-keys/uwv-es256.key.pem"),
        Algorithm::ES256,
    )?;
    Ok(crate::consent_token::issue_token(
        claims,
        "uwv-consent-1",
        Algorithm::ES256,
        &key,
    )?)
}

/// A bearer token for a person (`roles` among privacy-officer, covenant-admin, operator), signed
/// by the demo issuer, valid for an hour.
pub fn person_token(certs: &Path, sub: &str, org: &str, roles: &[&str]) -> anyhow::Result<String> {
    let key =
        crate::keys::load_private(&certs.join("jwt-issuer/issuer.key.pem"), Algorithm::ES256)?;
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": "https://login.poortwachter.example",
        "aud": GATEWAY_ID,
        "sub": sub,
        "org": org,
        "roles": roles,
        "iat": now,
        "exp": now + 3600,
    });
    Ok(crate::auth::issue(
        &claims,
        "issuer-1",
        Algorithm::ES256,
        &key,
    )?)
}

/// A client with the certificate `name` (`uwv`, `sdd`, `gorinchem`, …) for `port`.
pub fn client(certs: &Path, name: &str, port: u16) -> anyhow::Result<MtlsClient> {
    Ok(MtlsClient::builder(certs.join("ca.pem"))
        .identity(
            certs.join(format!("{name}.pem")),
            certs.join(format!("{name}-key.pem")),
        )
        .addr(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .build()?)
}

/// The example handover record UWV stores for the demo client.
pub fn demo_handover() -> serde_json::Value {
    serde_json::json!({ "fields": {
        "available_hours_per_week": 32,
        "own_transport": true,
        "driving_licence": ["B"],
        "childcare_arranged": true,
        "education_level": "mbo-3",
        "certificates": ["VCA basis", "Heftruck"],
        "work_experience": ["Orderpicker, 2019-2024", "Chauffeur bezorgdienst, 2016-2019"],
        "preferred_sector": "Logistiek",
        "job_ready": true,
        "wage_value_band": "80-100",
        "ww_end_date": "2027-02-28",
        "adviser_contact": "J. de Vries, UWV Dordrecht, 088-8989898",
        "mental_health_complaints": "(demo) lichte klachten, onder behandeling"
    }})
}

fn show(step: &str, resp: &ClientResponse) {
    let v = resp.json();
    println!("\n── {step}");
    println!("   HTTP {}", resp.status);
    if let Some(reason) = v.get("reason").and_then(|r| r.as_str()) {
        println!("   refused: reason = {reason}");
        if let Some(d) = v.get("detail").and_then(|r| r.as_str()) {
            println!("   detail:  {d}");
        }
    }
    if let Some(released) = v.get("released").and_then(|r| r.as_object()) {
        println!("   released ({}):", released.len());
        for (k, val) in released {
            println!("     {k:<26} {val}");
        }
    }
    if let Some(withheld) = v.get("withheld").and_then(|r| r.as_array()) {
        for w in withheld {
            println!(
                "   withheld: {:<26} ({})",
                w["field"].as_str().unwrap_or(""),
                w["reason"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(b) = v.get("basis").and_then(|b| b.as_object()) {
        println!(
            "   basis:   {} · {} · consent {}",
            b["covenant"].as_str().unwrap_or(""),
            b["legal_basis"].as_str().unwrap_or(""),
            b["consent"].as_str().unwrap_or("—")
        );
    }
    if let Some(id) = v.get("disclosure_id").and_then(|r| r.as_str()) {
        println!("   audit:   {id} (committed before this answer)");
    }
}

/// A disclosure request by the Sociale Dienst's (or another municipality's) system.
async fn ask(
    client: &MtlsClient,
    purpose: &str,
    bsn: &str,
    fields: &[&str],
) -> anyhow::Result<ClientResponse> {
    let body = serde_json::to_vec(&serde_json::json!({
        "subject": { "bsn": bsn },
        "purpose": purpose,
        "fields": fields,
        "on_behalf_of": "sdd-klantmanager-0815"
    }))?;
    Ok(client
        .send(hyper::Method::POST, "/v1/disclosures", None, Some(body))
        .await?)
}

/// Run the guided scenario against a gateway on `port`.
pub async fn run_scenario(certs: &Path, port: u16) -> anyhow::Result<()> {
    use hyper::Method;
    let uwv = client(certs, "uwv", port)?;
    let sdd = client(certs, "sdd", port)?;
    let gorinchem = client(certs, "gorinchem", port)?;
    let now = chrono::Utc::now().timestamp();
    let jti = crate::crypto::random_id("consent");

    println!("\n1. UWV registers the client's signed consent (job mediation → Sociale Dienst Drechtsteden).");
    let token = sign_as_uwv(certs, &demo_consent(&jti, CLIENT_WITH_CONSENT, now)?)?;
    let body = serde_json::to_vec(&serde_json::json!({ "token": token }))?;
    let r = uwv
        .send(Method::POST, "/v1/consents", None, Some(body))
        .await?;
    println!("   HTTP {} consent {}", r.status, r.json()["consent_id"]);

    println!("\n2. UWV stores the adviser's notes for the client (encrypted at rest).");
    for purpose in ["job-mediation", "bijstand-intake"] {
        let mut record = demo_handover();
        if purpose == "bijstand-intake" {
            record = serde_json::json!({ "fields": {
                "ww_end_date": "2027-02-28",
                "adviser_contact": "J. de Vries, UWV Dordrecht, 088-8989898"
            }});
        }
        let path = format!("/v1/handovers/{purpose}/{CLIENT_WITH_CONSENT}");
        let r = uwv
            .send(Method::PUT, &path, None, Some(serde_json::to_vec(&record)?))
            .await?;
        println!("   {purpose}: HTTP {}", r.status);
    }

    let r = ask(
        &sdd,
        "job-mediation",
        CLIENT_WITH_CONSENT,
        &[
            "available_hours_per_week",
            "own_transport",
            "childcare_arranged",
            "job_ready",
            "wage_value_band",
            "cv",
        ],
    )
    .await?;
    show(
        "3. GRANTED: the Sociale Dienst asks for job-readiness fields (cv is not in the consent)",
        &r,
    );

    let r = ask(&sdd, "bijstand-intake", CLIENT_WITH_CONSENT, &[]).await?;
    show("4. GRANTED: Bijstand intake on a legal obligation, no consent needed (all the grant allows)", &r);

    let r = ask(
        &sdd,
        "job-mediation",
        CLIENT_WITHOUT_CONSENT,
        &["own_transport"],
    )
    .await?;
    show("5. REFUSED: a client who gave no consent", &r);

    let r = ask(
        &gorinchem,
        "job-mediation",
        CLIENT_WITH_CONSENT,
        &["own_transport"],
    )
    .await?;
    show(
        "6. REFUSED: Gemeente Gorinchem is outside the Drechtsteden covenant",
        &r,
    );

    let r = ask(
        &sdd,
        "job-mediation",
        CLIENT_WITH_CONSENT,
        &["debt_assistance", "addiction_treatment_history"],
    )
    .await?;
    show(
        "7. REFUSED: fields outside the grant (debts, addiction history)",
        &r,
    );

    let r = uwv
        .send(
            Method::POST,
            &format!("/v1/consents/{jti}/revoke"),
            None,
            None,
        )
        .await?;
    println!(
        "\n8. The client withdraws consent; UWV revokes it: HTTP {} ({} handover record(s) destroyed)",
        r.status,
        r.json()["handovers_destroyed"]
    );
    let r = ask(
        &sdd,
        "job-mediation",
        CLIENT_WITH_CONSENT,
        &["own_transport"],
    )
    .await?;
    show("9. REFUSED: the consent is revoked", &r);
    Ok(())
}

/// Print `curl` commands for the running demo.
pub fn print_curl(certs: &Path, port: u16) {
    let c = certs.display();
    println!("\nThe gateway keeps running on https://localhost:{port}. Try it yourself:\n");
    println!(
        "  curl --cacert {c}/ca.pem --cert {c}/sdd.pem --key {c}/sdd-key.pem \\\n    -H 'content-type: application/json' \\\n    -d '{{\"subject\":{{\"bsn\":\"{CLIENT_WITH_CONSENT}\"}},\"purpose\":\"bijstand-intake\"}}' \\\n    https://localhost:{port}/v1/disclosures\n"
    );
    println!(
        "  # outside the covenant → no-active-covenant\n  curl --cacert {c}/ca.pem --cert {c}/gorinchem.pem --key {c}/gorinchem-key.pem \\\n    -H 'content-type: application/json' \\\n    -d '{{\"subject\":{{\"bsn\":\"{CLIENT_WITH_CONSENT}\"}},\"purpose\":\"job-mediation\"}}' \\\n    https://localhost:{port}/v1/disclosures\n"
    );
    println!(
        "  # a BSN failing the 11-check → invalid-bsn\n  curl --cacert {c}/ca.pem --cert {c}/sdd.pem --key {c}/sdd-key.pem \\\n    -H 'content-type: application/json' \\\n    -d '{{\"subject\":{{\"bsn\":\"123456789\"}},\"purpose\":\"job-mediation\"}}' \\\n    https://localhost:{port}/v1/disclosures\n"
    );
    println!(
        "  # no client certificate → no-client-certificate\n  curl --cacert {c}/ca.pem -H 'content-type: application/json' -d '{{}}' https://localhost:{port}/v1/disclosures\n"
    );
    if let Ok(token) = person_token(certs, "fg-sdd-1", SDD, &["privacy-officer"]) {
        println!(
            "  # as the Sociale Dienst's privacy officer: the audit log, and the report for the client\n  TOKEN={token}\n  curl --cacert {c}/ca.pem -H \"authorization: Bearer $TOKEN\" https://localhost:{port}/v1/audit/records\n  curl --cacert {c}/ca.pem -H \"authorization: Bearer $TOKEN\" -H 'accept: text/html' https://localhost:{port}/v1/audit/subjects/{CLIENT_WITH_CONSENT} > report.html\n  curl --cacert {c}/ca.pem -H \"authorization: Bearer $TOKEN\" https://localhost:{port}/v1/audit/verify\n"
        );
    }
    println!("Stop with Ctrl-C.");
}

/// Wait for the gateway at `port` to answer `/healthz`.
pub async fn wait_ready(certs: &Path, port: u16) -> anyhow::Result<()> {
    let c = client(certs, "sdd", port)?;
    for _ in 0..100 {
        if let Ok(r) = c.send(hyper::Method::GET, "/healthz", None, None).await {
            if r.status == 200 {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the gateway did not become ready on port {port}")
}

/// Load the configuration the demo wrote.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}
