//! DEVELOPMENT ONLY. The demo's gateway configuration: example certificates (generated when
//! missing), the example covenant signed by both parties with their development keys, fresh
//! secrets and a SQLite database, written into one data directory.

use std::path::PathBuf;

use anyhow::Context;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::Algorithm;
use policy::{Covenant, DocumentFormat, Oin};
use ring::rand::{SecureRandom, SystemRandom};

use super::{DemoPaths, GATEWAY_ID, GORINCHEM, SDD, SDD_IDP, UWV};
use crate::sign;

/// Write the demo configuration (and covenant signatures and secrets) into `paths.data`.
/// Returns the configuration file's path. Existing secrets are kept, so a restart reads the same
/// database.
pub fn write_config(paths: &DemoPaths, listen: &str) -> anyhow::Result<PathBuf> {
    let data = &paths.data;
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    if !paths.certs.join("ca.pem").exists() {
        crate::certs::generate(&paths.certs)?;
    }
    crate::certs::ensure_gateway_client(&paths.certs)?;
    let certs = paths
        .certs
        .canonicalize()
        .with_context(|| format!("cannot find {}", paths.certs.display()))?;
    let data = data.canonicalize()?;

    for name in ["kek.b64", "pseudonym-key.b64"] {
        let p = data.join(name);
        if !p.exists() {
            std::fs::write(&p, STANDARD.encode(random_bytes::<32>()?))?;
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
        let key = sign::load_key(&certs.join(format!("covenant-keys/{file}.key.pem")), alg)?;
        let party: Oin = party.parse()?;
        let jws = sign::covenant(&covenant, &party, kid, alg, &key)?;
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
# Issue 16: SDD's identity provider signs actor assertions (the employee behind a call).
actor_keys = [{{ kid = "sdd-idp-1", alg = "ES256", file = "{c}/actor-keys/sdd-idp-es256.pub.pem" }}]
actor_issuer = "{SDD_IDP}"

[[organisations]]
oin = "{GORINCHEM}"
name = "Gemeente Gorinchem"
consent_keys = [{{ kid = "gorinchem-consent-1", alg = "ES256", file = "{c}/consent-keys/gorinchem-es256.pub.pem" }}]
actor_keys = [{{ kid = "gorinchem-idp-1", alg = "EdDSA", file = "{c}/actor-keys/gorinchem-idp-ed25519.pub.pem" }}]

[[human_issuers]]
issuer = "https://login.poortwachter.example"
audience = "{GATEWAY_ID}"
keys = [{{ kid = "issuer-1", alg = "ES256", file = "{c}/jwt-issuer/issuer.pub.pem" }}]

[[covenants]]
file = "{d}/covenant.toml"
signatures = [{sigs}]

# The web console under /console. DEVELOPMENT LOGIN: anyone who reaches the port may log in as
# any organisation's privacy officer or covenant administrator; every page says so. Production
# configures one OpenID Connect provider per organisation instead ([[console.providers]]).
[console]
public_url = "https://localhost:{port}"
development_login = true
"#,
        port = listen.rsplit(':').next().unwrap_or("8443"),
        sigs = signatures.join(", ")
    );
    let path = data.join("poortwachter.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

// --- issue 16: a role-bound covenant ---

/// The purpose of the demo's role-bound grant: the Poort's intake reads a few facts about a WW
/// client, and only the Poort's intakers may.
pub const INTAKE_PURPOSE: &str = "intake-poort";
/// The role the role-bound grant names.
pub const INTAKE_ROLE: &str = "intaker-poort";

/// A second covenant between UWV and SDD whose one grant (`intake-poort`, a legal obligation, no
/// consent) names the role `intaker-poort`: written and signed by both parties into
/// `paths.data`. Returns the covenant file and its signature files, to add to a configuration's
/// `[[covenants]]`.
pub fn write_role_covenant(paths: &DemoPaths) -> anyhow::Result<(PathBuf, Vec<PathBuf>)> {
    let certs = paths.certs.canonicalize()?;
    let data = paths.data.canonicalize()?;
    let text = format!(
        r#"id = "drechtsteden-intake-poort"
version = 1
title = "Intake bij de Poort: feiten over WW-klanten voor de intakers"
region = "Drechtsteden"
valid_from = "2026-01-01"
valid_until = "2027-12-31"

[[parties]]
oin = "{UWV}"
name = "UWV"
role = "source"

[[parties]]
oin = "{SDD}"
name = "Sociale Dienst Drechtsteden"
role = "recipient"

[[grants]]
purpose = "{INTAKE_PURPOSE}"
source = "{UWV}"
recipients = ["{SDD}"]
fields = ["ww_end_date", "job_ready"]
legal_basis = "legal-obligation"
basis_text = "Participatiewet art. 64 (inlichtingenplicht UWV)"
consent_required = false
retention_days = 30
roles = ["{INTAKE_ROLE}"]
"#
    );
    let covenant = Covenant::parse(&text, DocumentFormat::Toml)
        .map_err(|e| anyhow::anyhow!("role-bound covenant: {e}"))?;
    let file = data.join("covenant-intake.toml");
    std::fs::write(&file, &text)?;
    let mut signatures = Vec::new();
    for (party, name, kid, alg) in [
        (UWV, "uwv", "uwv-covenant-1", Algorithm::ES256),
        (SDD, "sdd", "sdd-covenant-1", Algorithm::EdDSA),
    ] {
        let key = sign::load_key(&certs.join(format!("covenant-keys/{name}.key.pem")), alg)?;
        let party: Oin = party.parse()?;
        let jws = sign::covenant(&covenant, &party, kid, alg, &key)?;
        let path = data.join(format!("covenant-intake.{name}.sig"));
        std::fs::write(&path, jws)?;
        signatures.push(path);
    }
    Ok((file, signatures))
}

/// An actor assertion for an SDD employee (`sub`, `roles`), signed by SDD's identity provider
/// (development key), valid from `now` for two minutes, with a fresh `jti`.
pub fn sdd_actor_assertion(
    certs: &std::path::Path,
    sub: &str,
    roles: &[&str],
    now: i64,
) -> anyhow::Result<String> {
    let key = sign::load_key(
        &certs.join("actor-keys/sdd-idp-es256.key.pem"),
        Algorithm::ES256,
    )?;
    let claims = serde_json::json!({
        "iss": super::SDD_IDP,
        "sub": sub,
        "org": SDD,
        "roles": roles,
        "aud": GATEWAY_ID,
        "iat": now,
        "exp": now + 120,
        "jti": format!("act-{}", URL_SAFE_NO_PAD.encode(random_bytes::<16>()?)),
    });
    Ok(sign::actor_assertion(
        &claims,
        "sdd-idp-1",
        Algorithm::ES256,
        &key,
    )?)
}

/// `N` fresh random bytes (a secret).
fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    Ok(out)
}
