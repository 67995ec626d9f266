//! Every refused act of an identified organisation is an audit record, made durable before the
//! answer: refused consent registrations (forged, expired, not the caller's, replayed), refused
//! revocations and refused handovers, one test per reason, over real mutual TLS. Each checks the
//! record (kind, reason, caller, what it may and may not hold), that neither the stored record nor
//! anything logged (at TRACE, every dependency included) holds the token, a BSN or a value, that
//! the record validates against `audit-record.schema.json`, that the chain verifies afterwards,
//! and that the refusal is counted in `/metrics`. A refusal that cannot be audited is answered
//! with `audit-unavailable`.
//!
//! A separate test binary: it installs a process-wide tracing subscriber that writes into memory.

mod common;

use std::sync::OnceLock;

use common::*;
use devkit::demo::{GORINCHEM, SDD, UWV};
use gateway::audit::checkpoint::{CheckpointKeys, CheckpointPublicKey};
use gateway::audit::record::{AuditKind, AuditRecord, Outcome};
use gateway::audit::verify::VerifyOptions;
use gateway::audit::verify_sources::verify_store;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

// ── the log, captured ───────────────────────────────────────────────────────────────────────

/// The process-wide log capture, at TRACE (installed by the first test that asks).
fn log() -> &'static Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("the only subscriber in this process");
        captured
    })
}

/// A gateway (demo set-up), with the log capture installed first.
async fn gateway() -> Gateway {
    log();
    Gateway::start().await
}

// ── tokens ──────────────────────────────────────────────────────────────────────────────────

fn claims_json(jti: &str, bsn: &str) -> Value {
    serde_json::to_value(demo_consent(jti, bsn)).unwrap()
}

/// What a token and the request around it must never leave behind: the token, each of its
/// segments, and the BSN.
fn token_secrets(token: &str, bsn: &str) -> Vec<String> {
    let mut secrets = vec![token.to_owned(), bsn.to_owned()];
    secrets.extend(
        token
            .split('.')
            .filter(|s| s.len() >= 16)
            .map(str::to_owned),
    );
    secrets
}

// ── what a refusal must leave, and what not ─────────────────────────────────────────────────

/// A made-up BSN for test `n` (far from the digits of the example OINs).
fn subject(n: u32) -> String {
    bsn(400 + n)
}

/// Values of the demo handover record that must never reach the log or the audit record.
const VALUES: [&str; 4] = ["088-8989898", "Orderpicker", "Logistiek", "lichte klachten"];

/// The validator of `audit-record.schema.json`, references resolved from `schemas/`.
fn record_schema() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let dir = repo_root().join("schemas");
        let mut options = jsonschema::options();
        for entry in std::fs::read_dir(&dir).expect("schemas/") {
            let path = entry.expect("entry").path();
            if path.to_string_lossy().ends_with(".schema.json") {
                let doc: Value =
                    serde_json::from_slice(&std::fs::read(&path).expect("readable")).expect("json");
                let id = doc["$id"].as_str().expect("$id").to_owned();
                options = options.with_resource(
                    id,
                    jsonschema::Resource::from_contents(doc).expect("resource"),
                );
            }
        }
        let schema: Value = serde_json::from_slice(
            &std::fs::read(dir.join("audit-record.schema.json")).expect("readable"),
        )
        .expect("json");
        options
            .build(&schema)
            .expect("the audit record schema compiles")
    })
}

/// The one record the refused act left: the only record of `kind` with `reason` among those
/// appended after `before` records. Checks that it is a refusal by `caller`, that it validates
/// against the schema, that neither it nor the log holds any of `secrets`, that the whole chain
/// verifies (hashes, links, every column against its record, signed checkpoints), and that
/// `/metrics` counts the refusal under `endpoint`.
async fn assert_refusal_recorded(
    gw: &Gateway,
    before: usize,
    kind: AuditKind,
    reason: &str,
    caller: &str,
    endpoint: &str,
    secrets: &[String],
) -> AuditRecord {
    let store = gw.store().await;
    let records = assert_chain_verifies(&store).await;
    let new: Vec<&AuditRecord> = records[before..]
        .iter()
        .filter(|r| r.entry.kind == Some(kind) && r.entry.reason.as_deref() == Some(reason))
        .collect();
    assert_eq!(
        new.len(),
        1,
        "one {} record with reason {reason}: {:?}",
        kind.as_str(),
        &records[before..]
    );
    let record = new[0].clone();
    assert_eq!(record.entry.decision, Some(Outcome::Refuse));
    assert_eq!(record.entry.requester_oin.as_deref(), Some(caller));
    assert!(record.entry.fields_released.is_empty());

    let stored = serde_json::to_value(&record).expect("record serialises");
    let errors: Vec<String> = record_schema()
        .iter_errors(&stored)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:?}: {stored}");
    let stored = stored.to_string();
    let logged = log().text();
    for secret in secrets {
        assert!(
            !stored.contains(secret.as_str()),
            "the audit record holds {secret:?}: {stored}"
        );
        assert!(
            !logged.contains(secret.as_str()),
            "the log holds {secret:?}"
        );
    }

    let keys = CheckpointKeys::new([CheckpointPublicKey::load(
        &certs_dir().join("audit/checkpoint-ed25519.pub.pem"),
    )
    .expect("checkpoint key")]);
    let report = verify_store(&store, keys, VerifyOptions::default(), |_| {})
        .await
        .expect("verification runs");
    assert!(report.ok, "{report:?}");

    let metrics = gw
        .anonymous_client()
        .get("/metrics")
        .await
        .expect("metrics answered");
    let counted = format!("endpoint=\"{endpoint}\"");
    let refused = format!("outcome=\"refuse\",reason=\"{reason}\"}}");
    assert!(
        text(&metrics)
            .lines()
            .any(|l| l.starts_with("poortwachter_decisions_total{")
                && l.contains(&counted)
                && l.contains(&refused)),
        "{endpoint} refusal {reason} counted: {}",
        text(&metrics)
    );
    record
}

async fn record_count(gw: &Gateway) -> usize {
    audit_records(&gw.store().await).await.len()
}

// ── consent registrations ───────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_consent_tokens_are_audited_with_only_what_the_configuration_already_knows() {
    let gw = gateway().await;
    let bsn = subject(1);
    let jti = new_jti();
    let claims = claims_json(&jti, &bsn);
    let key = uwv_consent_key();
    let genuine = jws(
        &json!({ "alg": "ES256", "typ": "consent+jwt", "kid": "uwv-consent-1" }),
        &claims,
        Algorithm::ES256,
        &key,
    );
    // A payload changed after signing: the signature no longer verifies.
    let mut forged_claims = claims.clone();
    forged_claims["fields"] = json!(["cv", "own_transport"]);
    let parts: Vec<&str> = genuine.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url(&serde_json::to_vec(&forged_claims).unwrap()),
        parts[2]
    );
    // `alg: none`, unsigned.
    let none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"consent+jwt","kid":"uwv-consent-1"}"#),
        parts[1]
    );
    // A kid of the attacker's choosing (here: a BSN) with a made-up algorithm name.
    let odd_kid = format!(
        "{}.{}.{}",
        b64url(
            format!(
                r#"{{"alg":"XS999","typ":"consent+jwt","kid":"{}"}}"#,
                bsn.as_str()
            )
            .as_bytes()
        ),
        parts[1],
        parts[2]
    );
    let cases = [
        (
            &tampered,
            "bad-signature",
            Some("ES256"),
            Some("uwv-consent-1"),
        ),
        // jsonwebtoken reads an algorithm name it does not know as a malformed header.
        (&none, "malformed", Some("none"), Some("uwv-consent-1")),
        (&odd_kid, "malformed", None, None),
    ];
    for (token, defect, alg, kid) in cases {
        let before = record_count(&gw).await;
        let r = gw.register_as("uwv", token).await;
        assert_problem(&r, 422, "invalid-consent-token");
        let mut secrets = token_secrets(token, &bsn);
        secrets.push(jti.clone());
        let record = assert_refusal_recorded(
            &gw,
            before,
            AuditKind::ConsentRegistrationRefused,
            "invalid-consent-token",
            UWV,
            "consent-registration",
            &secrets,
        )
        .await;
        let e = &record.entry;
        let facts = e.consent_token.as_ref().expect("the token's facts");
        assert_eq!(facts.signature, "not-verified", "{defect}");
        assert_eq!(facts.defect.as_deref(), Some(defect), "{alg:?}");
        assert_eq!(facts.alg.as_deref(), alg, "{defect}");
        assert_eq!(facts.kid.as_deref(), kid, "{defect}");
        // `iss` names a configured issuer, so it is kept; nothing else the token claims is.
        assert_eq!(facts.iss.as_deref(), Some(UWV));
        assert_eq!(e.source_oin.as_deref(), Some(UWV));
        assert_eq!(facts.jti, None, "an unverified jti is the forger's text");
        assert_eq!(
            e.subject_pseudonym, None,
            "an unverified subject is not recorded"
        );
        assert_eq!(e.purpose, None);
        assert_eq!(e.consent_id, None);
    }
    // An issuer the gateway does not know is not recorded either.
    let mut stranger = claims_json(&new_jti(), &bsn);
    stranger["iss"] = json!("00000009999999999000");
    let token = jws(
        &json!({ "alg": "ES256", "typ": "consent+jwt", "kid": "someone-else" }),
        &stranger,
        Algorithm::ES256,
        &key,
    );
    let before = record_count(&gw).await;
    let r = gw.register_as("uwv", &token).await;
    assert_problem(&r, 422, "invalid-consent-token");
    let record = assert_refusal_recorded(
        &gw,
        before,
        AuditKind::ConsentRegistrationRefused,
        "invalid-consent-token",
        UWV,
        "consent-registration",
        &token_secrets(&token, &bsn),
    )
    .await;
    let facts = record.entry.consent_token.expect("facts");
    assert_eq!(
        (
            facts.alg.as_deref(),
            facts.kid,
            facts.iss,
            facts.defect.as_deref()
        ),
        (Some("ES256"), None, None, Some("unknown-key"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_consent_token_is_audited_with_the_facts_its_verified_signature_vouches_for() {
    let gw = gateway().await;
    let bsn = subject(2);
    let jti = new_jti();
    let mut claims = demo_consent(&jti, &bsn);
    claims.exp = now() - 3600;
    let token = sign_as_uwv(&claims);
    let before = record_count(&gw).await;
    let r = gw.register_as("uwv", &token).await;
    assert_problem(&r, 422, "invalid-consent-token");
    let record = assert_refusal_recorded(
        &gw,
        before,
        AuditKind::ConsentRegistrationRefused,
        "invalid-consent-token",
        UWV,
        "consent-registration",
        &token_secrets(&token, &bsn),
    )
    .await;
    let e = &record.entry;
    let facts = e.consent_token.as_ref().expect("facts");
    assert_eq!(facts.signature, "verified");
    assert_eq!(facts.defect.as_deref(), Some("expired"));
    assert_eq!(facts.jti.as_deref(), Some(jti.as_str()));
    assert_eq!(facts.iss.as_deref(), Some(UWV));
    assert_eq!(
        (facts.alg.as_deref(), facts.kid.as_deref()),
        (Some("ES256"), Some("uwv-consent-1"))
    );
    assert_eq!(e.purpose.as_deref(), Some("job-mediation"));
    // The subject as pseudonym: a privacy officer finds the record by the person's BSN.
    let pseudonym = e.subject_pseudonym.as_deref().expect("pseudonym");
    assert!(pseudonym.len() == 64 && pseudonym.bytes().all(|b| b.is_ascii_hexdigit()));
    let same = gw.register_as("uwv", &token).await;
    assert_problem(&same, 422, "invalid-consent-token");
    let records = audit_records(&gw.store().await).await;
    assert_eq!(
        records.last().unwrap().entry.subject_pseudonym.as_deref(),
        Some(pseudonym),
        "the same subject, the same pseudonym"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_token_presented_by_another_organisation_is_audited_as_not_consent_issuer() {
    let gw = gateway().await;
    let bsn = subject(3);
    let jti = new_jti();
    let token = sign_as_uwv(&demo_consent(&jti, &bsn));
    let before = record_count(&gw).await;
    let r = gw.register_as("sdd", &token).await;
    assert_problem(&r, 403, "not-consent-issuer");
    let record = assert_refusal_recorded(
        &gw,
        before,
        AuditKind::ConsentRegistrationRefused,
        "not-consent-issuer",
        SDD,
        "consent-registration",
        &token_secrets(&token, &bsn),
    )
    .await;
    let e = &record.entry;
    // The issuer is named as source, so that UWV's privacy officer sees who presented its consent.
    assert_eq!(e.source_oin.as_deref(), Some(UWV));
    let facts = e.consent_token.as_ref().expect("facts");
    assert_eq!(
        (facts.signature.as_str(), facts.defect.as_deref()),
        ("verified", None)
    );
    assert_eq!(facts.jti.as_deref(), Some(jti.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_token_registered_twice_is_audited_as_duplicate_consent() {
    let gw = gateway().await;
    let bsn = subject(4);
    let jti = new_jti();
    let token = sign_as_uwv(&demo_consent(&jti, &bsn));
    let r = gw.register_as("uwv", &token).await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let before = record_count(&gw).await;
    let r = gw.register_as("uwv", &token).await;
    assert_problem(&r, 409, "duplicate-consent");
    let record = assert_refusal_recorded(
        &gw,
        before,
        AuditKind::ConsentRegistrationRefused,
        "duplicate-consent",
        UWV,
        "consent-registration",
        &token_secrets(&token, &bsn),
    )
    .await;
    let facts = record.entry.consent_token.as_ref().expect("facts");
    // The replayed consent is named, so the officer can find the original registration.
    assert_eq!(facts.jti.as_deref(), Some(jti.as_str()));
    assert_eq!(facts.defect, None);
    let registered = audit_records(&gw.store().await)
        .await
        .into_iter()
        .find(|r| r.entry.kind == Some(AuditKind::ConsentRegistered))
        .expect("the first registration");
    assert_eq!(
        record.entry.subject_pseudonym,
        registered.entry.subject_pseudonym
    );
}

// ── revocations ─────────────────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_by_another_organisation_is_audited_as_not_consent_issuer() {
    let gw = gateway().await;
    let bsn = subject(5);
    let jti = gw.register_demo_consent(&bsn).await;
    let path = format!("/v1/consents/{jti}/revoke");
    let before = record_count(&gw).await;
    let r = post(&gw.client("gorinchem"), &path, &json!({})).await;
    assert_problem(&r, 403, "not-consent-issuer");
    let record = assert_refusal_recorded(
        &gw,
        before,
        AuditKind::ConsentRevocationRefused,
        "not-consent-issuer",
        GORINCHEM,
        "consent-revocation",
        std::slice::from_ref(&bsn),
    )
    .await;
    let e = &record.entry;
    assert_eq!(e.consent_id.as_deref(), Some(jti.as_str()));
    assert_eq!(e.source_oin.as_deref(), Some(UWV), "the issuer sees it");
    assert_eq!(
        e.subject_pseudonym, None,
        "another organisation's consent: its subject stays out of the caller's records"
    );

    // Revoked by UWV, then revoked again: refused `consent-revoked`, and audited.
    let r = post(&gw.client("uwv"), &path, &json!({})).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let before = record_count(&gw).await;
    let r = post(&gw.client("uwv"), &path, &json!({})).await;
    assert_problem(&r, 409, "consent-revoked");
    let record = assert_refusal_recorded(
        &gw,
        before,
        AuditKind::ConsentRevocationRefused,
        "consent-revoked",
        UWV,
        "consent-revocation",
        std::slice::from_ref(&bsn),
    )
    .await;
    assert!(record.entry.subject_pseudonym.is_some());
}

// ── handovers ───────────────────────────────────────────────────────────────────────────────

/// What a handover refusal must not leave behind: the BSN and every value of the record.
fn handover_secrets(bsn: &str, extra: &[&str]) -> Vec<String> {
    let mut s: Vec<String> = VALUES.iter().map(|v| v.to_string()).collect();
    s.push(bsn.to_owned());
    s.extend(extra.iter().map(|v| v.to_string()));
    s
}

/// Field names and reasons of a handover-refused record, sorted.
fn withheld(record: &AuditRecord) -> Vec<(String, String)> {
    let mut w: Vec<(String, String)> = record
        .entry
        .fields_withheld
        .iter()
        .map(|w| (w.field.clone(), w.reason.clone()))
        .collect();
    w.sort();
    w
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .iter()
        .map(|(f, r)| (f.to_string(), r.to_string()))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_by_an_organisation_that_is_not_a_source_is_audited() {
    let gw = gateway().await;
    let bsn = subject(6);
    let before = record_count(&gw).await;
    let r = gw
        .put_handover("sdd", "job-mediation", &bsn, &devkit::demo::demo_handover())
        .await;
    assert_problem(&r, 403, "not-a-source");
    let record = assert_refusal_recorded(
        &gw,
        before,
        AuditKind::HandoverRefused,
        "not-a-source",
        SDD,
        "handover",
        &handover_secrets(&bsn, &[]),
    )
    .await;
    let e = &record.entry;
    assert_eq!(e.purpose.as_deref(), Some("job-mediation"));
    assert!(e.subject_pseudonym.is_some());
    assert_eq!(
        (e.covenant.as_deref(), e.legal_basis.as_deref()),
        (None, None)
    );
    // Every field it tried to push, by name.
    let names = devkit::demo::demo_handover()["fields"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (k.clone(), "not-a-source".to_owned()))
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(
        withheld(&record)
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>(),
        names
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_with_a_field_not_granted_is_audited_naming_the_field() {
    let gw = gateway().await;
    let bsn = subject(7);
    gw.register_demo_consent(&bsn).await;
    let record_body = json!({ "fields": {
        "own_transport": true,
        "debt_assistance": true,
        "adviser_contact": VALUES[0]
    } });
    let before = record_count(&gw).await;
    let r = gw
        .put_handover("uwv", "job-mediation", &bsn, &record_body)
        .await;
    assert_problem(&r, 422, "field-not-granted");
    let record = assert_refusal_recorded(
        &gw,
        before,
        AuditKind::HandoverRefused,
        "field-not-granted",
        UWV,
        "handover",
        &handover_secrets(&bsn, &[]),
    )
    .await;
    assert_eq!(
        withheld(&record),
        pairs(&[("debt_assistance", "field-not-granted")])
    );
    assert!(record.entry.subject_pseudonym.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_with_a_value_of_the_wrong_type_is_audited_as_field_type_mismatch() {
    let gw = gateway().await;
    let bsn = subject(8);
    gw.register_demo_consent(&bsn).await;
    let before = record_count(&gw).await;
    let r = gw
        .put_handover(
            "uwv",
            "job-mediation",
            &bsn,
            &json!({ "fields": {
                "own_transport": true,
                "available_hours_per_week": "many hours Orderpicker",
                "education_level": "phd Logistiek"
            } }),
        )
        .await;
    assert_problem(&r, 422, "field-type-mismatch");
    let record = assert_refusal_recorded(
        &gw,
        before,
        AuditKind::HandoverRefused,
        "field-type-mismatch",
        UWV,
        "handover",
        &handover_secrets(&bsn, &["many hours", "phd"]),
    )
    .await;
    assert_eq!(
        withheld(&record),
        pairs(&[
            ("available_hours_per_week", "field-type-mismatch"),
            ("education_level", "field-type-mismatch"),
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_with_a_field_not_in_the_catalogue_is_audited_without_free_text_keys() {
    let gw = gateway().await;
    let bsn = subject(9);
    gw.register_demo_consent(&bsn).await;
    // A key that is no field name at all can carry anything: a BSN, a note.
    let other_bsn = subject(19);
    let note_key = "Client owes money to the landlord";
    let mut fields = serde_json::Map::new();
    fields.insert("own_transport".into(), json!(true));
    fields.insert("shoe_size".into(), json!(44));
    fields.insert("debt_assistance".into(), json!(true));
    fields.insert(other_bsn.clone(), json!(true));
    fields.insert(note_key.into(), json!(1));
    let before = record_count(&gw).await;
    let r = gw
        .put_handover("uwv", "job-mediation", &bsn, &json!({ "fields": fields }))
        .await;
    assert_problem(&r, 422, "field-not-in-catalogue");
    let record = assert_refusal_recorded(
        &gw,
        before,
        AuditKind::HandoverRefused,
        "field-not-in-catalogue",
        UWV,
        "handover",
        &handover_secrets(&bsn, &[other_bsn.as_str(), note_key, "landlord"]),
    )
    .await;
    assert_eq!(
        withheld(&record),
        pairs(&[
            ("debt_assistance", "field-not-granted"),
            ("shoe_size", "field-not-in-catalogue"),
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_without_the_clients_consent_is_audited_as_consent_required() {
    let gw = gateway().await;
    let bsn = subject(10);
    let before = record_count(&gw).await;
    let r = gw
        .put_handover(
            "uwv",
            "job-mediation",
            &bsn,
            &json!({ "fields": { "own_transport": true, "adviser_contact": VALUES[0] } }),
        )
        .await;
    assert_problem(&r, 403, "consent-required");
    let record = assert_refusal_recorded(
        &gw,
        before,
        AuditKind::HandoverRefused,
        "consent-required",
        UWV,
        "handover",
        &handover_secrets(&bsn, &[]),
    )
    .await;
    let e = &record.entry;
    assert!(e.subject_pseudonym.is_some());
    assert!(e
        .covenant
        .as_deref()
        .is_some_and(|c| c.starts_with("drechtsteden-max-ww@")));
    assert_eq!(e.legal_basis.as_deref(), Some("consent"));
    assert_eq!(
        withheld(&record),
        pairs(&[
            ("adviser_contact", "consent-required"),
            ("own_transport", "consent-required"),
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_handovers_that_reach_the_use_case_are_audited_as_malformed_request() {
    let gw = gateway().await;
    let bsn = subject(11);
    gw.register_demo_consent(&bsn).await;
    // A record without fields reaches the use-case (an invalid BSN or purpose in the body is
    // refused by the body's parser at the edge, before any act, as for disclosures).
    let before = record_count(&gw).await;
    let r = gw
        .put_handover("uwv", "job-mediation", &bsn, &json!({ "fields": {} }))
        .await;
    assert_problem(&r, 400, "malformed-request");
    let record = assert_refusal_recorded(
        &gw,
        before,
        AuditKind::HandoverRefused,
        "malformed-request",
        UWV,
        "handover",
        &handover_secrets(&bsn, &[]),
    )
    .await;
    assert_eq!(record.entry.purpose.as_deref(), Some("job-mediation"));
    assert!(record.entry.fields_withheld.is_empty());
}

// ── fail closed ─────────────────────────────────────────────────────────────────────────────

/// Make every insert into the audit log fail (a trigger), on either backend; undone on `end`.
struct AuditOutage {
    url: String,
}

impl AuditOutage {
    async fn begin(url: &str) -> AuditOutage {
        use sqlx::Connection;
        if url.starts_with("sqlite:") {
            let mut db = sqlx::SqliteConnection::connect(url)
                .await
                .expect("connects");
            sqlx::query(
                "CREATE TRIGGER audit_down BEFORE INSERT ON audit_log \
                 BEGIN SELECT RAISE(ABORT, 'down'); END;",
            )
            .execute(&mut db)
            .await
            .expect("trigger created");
        } else {
            let mut db = sqlx::PgConnection::connect(url).await.expect("connects");
            sqlx::raw_sql(
                "CREATE FUNCTION audit_down() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'down'; END $$; \
                 CREATE TRIGGER audit_down BEFORE INSERT ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION audit_down();",
            )
            .execute(&mut db)
            .await
            .expect("trigger created");
        }
        AuditOutage {
            url: url.to_owned(),
        }
    }

    async fn end(self) {
        use sqlx::Connection;
        if self.url.starts_with("sqlite:") {
            let mut db = sqlx::SqliteConnection::connect(&self.url)
                .await
                .expect("connects");
            sqlx::query("DROP TRIGGER audit_down")
                .execute(&mut db)
                .await
                .expect("trigger dropped");
        } else {
            let mut db = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connects");
            sqlx::raw_sql("DROP TRIGGER audit_down ON audit_log; DROP FUNCTION audit_down();")
                .execute(&mut db)
                .await
                .expect("trigger dropped");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_that_cannot_be_audited_is_answered_with_audit_unavailable() {
    let gw = gateway().await;
    let bsn = subject(12);
    let jti = gw.register_demo_consent(&bsn).await;
    let token = sign_as_uwv(&demo_consent(&jti, &bsn));
    let before = record_count(&gw).await;

    let outage = AuditOutage::begin(&gw.db_url()).await;
    let r = gw.register_as("uwv", &token).await;
    assert_problem(&r, 503, "audit-unavailable");
    let r = gw.register_as("sdd", &token).await;
    assert_problem(&r, 503, "audit-unavailable");
    let r = post(
        &gw.client("gorinchem"),
        &format!("/v1/consents/{jti}/revoke"),
        &json!({}),
    )
    .await;
    assert_problem(&r, 503, "audit-unavailable");
    let r = gw
        .put_handover("sdd", "job-mediation", &bsn, &devkit::demo::demo_handover())
        .await;
    assert_problem(&r, 503, "audit-unavailable");
    let r = gw
        .put_handover("uwv", "job-mediation", &bsn, &json!({ "fields": {} }))
        .await;
    assert_problem(&r, 503, "audit-unavailable");
    outage.end().await;
    assert_eq!(record_count(&gw).await, before, "nothing reached the log");

    // Repaired: the same refusal is answered and recorded.
    let r = gw.register_as("uwv", &token).await;
    assert_problem(&r, 409, "duplicate-consent");
    assert_refusal_recorded(
        &gw,
        before,
        AuditKind::ConsentRegistrationRefused,
        "duplicate-consent",
        UWV,
        "consent-registration",
        &token_secrets(&token, &bsn),
    )
    .await;
}
