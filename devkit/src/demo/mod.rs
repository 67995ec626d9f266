//! DEVELOPMENT ONLY. The demo (`poortwachter demo`): a complete local set-up on the embedded
//! default — example certificates, the Drechtsteden covenant signed by both parties, fresh
//! secrets, a SQLite database (`config`) — and a guided run that shows disclosures granted and
//! refused (`scenario`). The same set-up and the fixtures below serve the end-to-end tests and
//! the load generator; starting the gateway itself is the binary's part (`gateway/src/dev/`).
//! The demo prints organisation names, field names and decisions; BSNs only the made-up ones.

mod config;
mod live;
mod scenario;

use std::path::{Path, PathBuf};

use jsonwebtoken::Algorithm;
use policy::{ConsentClaims, Evidence};
use ring::rand::{SecureRandom, SystemRandom};

use crate::client::MtlsClient;
use crate::sign;

pub use config::{
    sdd_actor_assertion, write_config, write_role_covenant, INTAKE_PURPOSE, INTAKE_ROLE,
};
pub use live::{
    add_live_source, live_covenant, run_live_scenario, source_records, write_source_config,
    LiveOutcome,
};
pub use scenario::{print_curl, run_actor_scenario, run_scenario, wait_ready};

/// UWV, the source organisation.
pub const UWV: &str = crate::certs::UWV_OIN;
/// Sociale Dienst Drechtsteden, the recipient.
pub const SDD: &str = crate::certs::SDD_OIN;
/// Gemeente Gorinchem, outside the Drechtsteden covenant.
pub const GORINCHEM: &str = crate::certs::GORINCHEM_OIN;
/// The gateway's id in the demo configuration: the audience of consent and bearer tokens.
pub const GATEWAY_ID: &str = "poortwachter-drechtsteden";
/// Issue 16: the `iss` of SDD's identity provider, which signs its employees' actor assertions.
pub const SDD_IDP: &str = "https://idp.sdd-drechtsteden.example";
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
    let key = sign::load_key(
        &certs.join("consent-keys/uwv-es256.key.pem"),
        Algorithm::ES256,
    )?;
    Ok(sign::consent_token(
        claims,
        "uwv-consent-1",
        Algorithm::ES256,
        &key,
    )?)
}

/// A bearer token for a person (`roles` among privacy-officer, covenant-admin, operator), signed
/// by the demo issuer, valid for an hour.
pub fn person_token(certs: &Path, sub: &str, org: &str, roles: &[&str]) -> anyhow::Result<String> {
    let key = sign::load_key(&certs.join("jwt-issuer/issuer.key.pem"), Algorithm::ES256)?;
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
    Ok(sign::bearer_token(
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

/// The body of `POST /v1/handovers` that stores `record` (`{"fields": {…}}`, as
/// [`demo_handover`] gives it) for (`purpose`, `bsn`). The BSN travels in the body, never in a
/// URL.
pub fn handover_request(purpose: &str, bsn: &str, record: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "purpose": purpose,
        "subject": { "bsn": bsn },
        "fields": record.get("fields").cloned().unwrap_or(serde_json::Value::Null),
    })
}

/// A fresh consent id (`jti`): `consent_` and 32 random hex digits.
pub fn new_consent_id() -> String {
    let mut bytes = [0u8; 16];
    // Without an entropy source nothing else in the demo works either; the id then says so.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        return "consent_no-randomness".to_owned();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("consent_{hex}")
}
