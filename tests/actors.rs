//! Issue 16 end to end, over real mutual TLS: actor assertions (the employee behind a call, in the
//! `Actor-Token` header), role-bound grants, the actor in every system call's audit record and
//! the review API's actor filter — and an attack test for each way an assertion can be forged or
//! misused (SECURITY.md, "Actor assertions"): every one is refused `invalid-actor-assertion`,
//! audited, and releases nothing.

mod common;

use common::*;
use devkit::client::ClientResponse;
use devkit::demo::{self, DemoPaths, GATEWAY_ID, GORINCHEM, SDD, SDD_IDP};
use gateway::audit::record::{AuditKind, AuditRecord, Outcome};
use gateway::config::CovenantSection;
use hyper::Method;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

const JOB_FIELDS: [&str; 2] = ["job_ready", "ww_end_date"];

fn sdd_idp_key() -> EncodingKey {
    gateway::keys::load_private(
        &certs_dir().join("actor-keys/sdd-idp-es256.key.pem"),
        Algorithm::ES256,
    )
    .expect("SDD IdP key loads")
}

fn gorinchem_idp_key() -> EncodingKey {
    gateway::keys::load_private(
        &certs_dir().join("actor-keys/gorinchem-idp-ed25519.key.pem"),
        Algorithm::EdDSA,
    )
    .expect("Gorinchem IdP key loads")
}

/// Claims of a good SDD actor assertion for `sub` with `roles`.
fn claims(sub: &str, roles: &[&str]) -> Value {
    let now = now();
    json!({
        "iss": SDD_IDP,
        "sub": sub,
        "org": SDD,
        "roles": roles,
        "aud": GATEWAY_ID,
        "iat": now,
        "exp": now + 120,
        "jti": new_jti(),
    })
}

fn sdd_header() -> Value {
    json!({ "alg": "ES256", "typ": "actor+jwt", "kid": "sdd-idp-1" })
}

/// A good assertion, signed by SDD's identity provider.
fn assertion(sub: &str, roles: &[&str]) -> String {
    jws(
        &sdd_header(),
        &claims(sub, roles),
        Algorithm::ES256,
        &sdd_idp_key(),
    )
}

/// `POST` `body` to `path` as `who`, with `actor` in the `Actor-Token` header when given.
async fn post_as(
    gw: &Gateway,
    who: &str,
    path: &str,
    body: &Value,
    actor: Option<&str>,
) -> ClientResponse {
    let headers: Vec<(&str, &str)> = actor.map(|a| ("actor-token", a)).into_iter().collect();
    gw.client(who)
        .send_with_headers(
            Method::POST,
            path,
            None,
            &headers,
            Some(serde_json::to_vec(body).unwrap()),
        )
        .await
        .expect("answered")
}

async fn disclose_as_sdd(gw: &Gateway, body: &Value, actor: Option<&str>) -> ClientResponse {
    post_as(gw, "sdd", "/v1/disclosures", body, actor).await
}

/// The last audit record of `kind`.
async fn last_record(gw: &Gateway, kind: AuditKind) -> AuditRecord {
    let records = assert_chain_verifies(&gw.store().await).await;
    records
        .into_iter()
        .rev()
        .find(|r| r.entry.kind == Some(kind))
        .expect("a record of that kind")
}

/// A gateway whose configuration also holds the role-bound covenant (`intake-poort`, role
/// `intaker-poort`).
async fn gateway_with_role_covenant() -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let paths = DemoPaths::in_repo(&repo_root(), dir.path());
    std::fs::create_dir_all(dir.path()).unwrap();
    let (file, signatures) = demo::write_role_covenant(&paths).expect("role covenant written");
    let gw = Gateway::start_on(TestDatabase::from_env(), |c| {
        c.covenants.push(CovenantSection { file, signatures });
    })
    .await;
    // The covenant was imported at start-up; its files are no longer needed.
    drop(dir);
    gw
}

// ── verified actors, recorded ─────────────────────────────────────────────────────────────────

#[tokio::test]
async fn a_valid_actor_is_recorded_on_the_disclosure_and_none_sent_is_recorded_as_none() {
    let gw = Gateway::start().await;
    let bsn = bsn(160);
    seed_demo_client(&gw.client("uwv"), &bsn).await;
    let body = ask(&bsn, "job-mediation", &JOB_FIELDS);

    let r = disclose_as_sdd(&gw, &body, Some(&assertion("emp-4711", &["klantmanager"]))).await;
    let v = assert_permitted(&r);
    let record = last_record(&gw, AuditKind::Disclosure).await;
    assert_eq!(record.entry.id, v["disclosure_id"]);
    let actor = record.entry.actor.expect("the record names the actor");
    assert_eq!(actor.assertion, "verified");
    assert_eq!(actor.sub.as_deref(), Some("emp-4711"));
    assert_eq!(actor.iss.as_deref(), Some(SDD_IDP));
    assert_eq!(
        actor.role, None,
        "the grant names no role, so none was used"
    );
    assert_eq!(record.entry.requester_person, None);

    let r = disclose_as_sdd(&gw, &body, None).await;
    assert_permitted(&r);
    let record = last_record(&gw, AuditKind::Disclosure).await;
    let actor = record.entry.actor.expect("the record says none was sent");
    assert_eq!(actor.assertion, "none");
    assert_eq!(actor.sub, None);

    // Handovers and consents carry it too (here: UWV sends none).
    let stored = last_record(&gw, AuditKind::HandoverStored).await;
    assert_eq!(
        stored.entry.actor.map(|a| a.assertion).as_deref(),
        Some("none")
    );
    let registered = last_record(&gw, AuditKind::ConsentRegistered).await;
    assert_eq!(
        registered.entry.actor.map(|a| a.assertion).as_deref(),
        Some("none")
    );
}

#[tokio::test]
async fn on_behalf_of_in_the_body_is_refused_as_an_unknown_member() {
    let gw = Gateway::start().await;
    let mut body = ask(&bsn(161), "job-mediation", &JOB_FIELDS);
    body["on_behalf_of"] = json!("sdd-klantmanager-0815");
    let r = disclose_as_sdd(&gw, &body, None).await;
    assert_problem(&r, 400, "malformed-request");
}

#[tokio::test]
async fn the_review_api_filters_by_actor() {
    let gw = Gateway::start().await;
    let bsn = bsn(162);
    seed_demo_client(&gw.client("uwv"), &bsn).await;
    let body = ask(&bsn, "job-mediation", &JOB_FIELDS);
    for sub in ["emp-a", "emp-b", "emp-a"] {
        assert_permitted(&disclose_as_sdd(&gw, &body, Some(&assertion(sub, &[]))).await);
    }
    assert_permitted(&disclose_as_sdd(&gw, &body, None).await);

    let officer = demo::person_token(&gw.certs, "fg-sdd", SDD, &["privacy-officer"]).unwrap();
    let search = |actor: &str| json!({ "actor": actor, "kind": "disclosure" });
    let sdd = gw.client("sdd");
    let r = sdd
        .send(
            Method::POST,
            "/v1/audit/records/search",
            Some(&officer),
            Some(serde_json::to_vec(&search("emp-a")).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", text(&r));
    let records = r.json()["records"].as_array().cloned().unwrap_or_default();
    assert_eq!(records.len(), 2, "{}", text(&r));
    assert!(records.iter().all(|rec| rec["actor"]["sub"] == "emp-a"));

    // The actor is never a URL parameter.
    let r = sdd
        .send(
            Method::GET,
            "/v1/audit/records?actor=emp-a",
            Some(&officer),
            None,
        )
        .await
        .unwrap();
    assert_problem(&r, 400, "malformed-request");
}

// ── role-bound grants ─────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn a_role_bound_grant_refuses_actor_required_and_role_not_granted_and_permits_the_role() {
    let gw = gateway_with_role_covenant().await;
    let bsn = bsn(163);
    let body = ask(&bsn, demo::INTAKE_PURPOSE, &JOB_FIELDS);

    let r = disclose_as_sdd(&gw, &body, None).await;
    assert_refused(&r, "actor-required");
    let record = last_record(&gw, AuditKind::Disclosure).await;
    assert_eq!(record.entry.reason.as_deref(), Some("actor-required"));
    assert_eq!(record.entry.actor.unwrap().assertion, "none");

    let r = disclose_as_sdd(&gw, &body, Some(&assertion("emp-9", &["klantmanager"]))).await;
    assert_refused(&r, "role-not-granted");
    let record = last_record(&gw, AuditKind::Disclosure).await;
    assert_eq!(record.entry.reason.as_deref(), Some("role-not-granted"));
    let actor = record.entry.actor.unwrap();
    assert_eq!((actor.sub.as_deref(), actor.role), (Some("emp-9"), None));

    let r = disclose_as_sdd(
        &gw,
        &body,
        Some(&assertion("emp-7", &["klantmanager", demo::INTAKE_ROLE])),
    )
    .await;
    let v = assert_permitted(&r);
    assert_eq!(v["record"], "no-record");
    let record = last_record(&gw, AuditKind::Disclosure).await;
    assert_eq!(record.entry.decision, Some(Outcome::Permit));
    let actor = record.entry.actor.unwrap();
    assert_eq!(actor.sub.as_deref(), Some("emp-7"));
    assert_eq!(actor.role.as_deref(), Some(demo::INTAKE_ROLE));
}

// ── attacks: every forged or misused assertion is refused, audited, and releases nothing ──────

/// Send `token` with a disclosure that would otherwise be released; assert it is refused
/// `invalid-actor-assertion` and audited with `defect`.
async fn assert_assertion_refused(gw: &Gateway, bsn: &str, token: &str, defect: &str) {
    let body = ask(bsn, "job-mediation", &JOB_FIELDS);
    let r = disclose_as_sdd(gw, &body, Some(token)).await;
    let v = assert_problem(&r, 403, "invalid-actor-assertion");
    assert!(v.get("released").is_none());
    let record = last_record(gw, AuditKind::Disclosure).await;
    assert_eq!(record.entry.decision, Some(Outcome::Refuse));
    assert_eq!(
        record.entry.reason.as_deref(),
        Some("invalid-actor-assertion")
    );
    assert!(record.entry.fields_released.is_empty());
    assert_eq!(
        record.entry.covenant, None,
        "refused before anything was decided"
    );
    let actor = record
        .entry
        .actor
        .expect("the refusal records the assertion");
    assert_eq!(actor.assertion, "invalid");
    assert_eq!(actor.defect.as_deref(), Some(defect), "defect of {defect}");
}

#[tokio::test]
async fn forged_actor_assertions_are_refused() {
    let gw = Gateway::start().await;
    let bsn = bsn(164);
    seed_demo_client(&gw.client("uwv"), &bsn).await;
    let good = claims("emp-1", &[]);

    // alg none, with and without an empty signature.
    let none = json!({ "alg": "none", "typ": "actor+jwt", "kid": "sdd-idp-1" });
    let input = format!(
        "{}.{}",
        b64url(&serde_json::to_vec(&none).unwrap()),
        b64url(&serde_json::to_vec(&good).unwrap())
    );
    assert_assertion_refused(&gw, &bsn, &format!("{input}."), "algorithm-not-allowed").await;
    assert_assertion_refused(&gw, &bsn, &input, "algorithm-not-allowed").await;

    // HS256 keyed with the identity provider's public key.
    let public_pem = std::fs::read(certs_dir().join("actor-keys/sdd-idp-es256.pub.pem")).unwrap();
    let hmac = EncodingKey::from_secret(&public_pem);
    let hs = json!({ "alg": "HS256", "typ": "actor+jwt", "kid": "sdd-idp-1" });
    let token = jws(&hs, &good, Algorithm::HS256, &hmac);
    assert_assertion_refused(&gw, &bsn, &token, "algorithm-not-allowed").await;

    // An unknown kid, and none.
    let unknown = json!({ "alg": "ES256", "typ": "actor+jwt", "kid": "sdd-idp-9" });
    let token = jws(
        &unknown,
        &claims("emp-1", &[]),
        Algorithm::ES256,
        &sdd_idp_key(),
    );
    assert_assertion_refused(&gw, &bsn, &token, "unknown-key").await;
    let no_kid = json!({ "alg": "ES256", "typ": "actor+jwt" });
    let token = jws(
        &no_kid,
        &claims("emp-1", &[]),
        Algorithm::ES256,
        &sdd_idp_key(),
    );
    assert_assertion_refused(&gw, &bsn, &token, "unknown-key").await;

    // The wrong key under SDD's kid (UWV's consent key, also ES256): the signature fails.
    let token = jws(
        &sdd_header(),
        &claims("emp-1", &[]),
        Algorithm::ES256,
        &uwv_consent_key(),
    );
    assert_assertion_refused(&gw, &bsn, &token, "bad-signature").await;

    // A good signature over other claims (payload swapped).
    let signed = assertion("emp-1", &[]);
    let mut parts: Vec<&str> = signed.split('.').collect();
    let forged_payload = b64url(&serde_json::to_vec(&claims("emp-boss", &["admin"])).unwrap());
    parts[1] = &forged_payload;
    assert_assertion_refused(&gw, &bsn, &parts.join("."), "bad-signature").await;

    // Another token type of the same issuer (no `actor+jwt`).
    let jwt = json!({ "alg": "ES256", "typ": "JWT", "kid": "sdd-idp-1" });
    let token = jws(
        &jwt,
        &claims("emp-1", &[]),
        Algorithm::ES256,
        &sdd_idp_key(),
    );
    assert_assertion_refused(&gw, &bsn, &token, "wrong-type").await;

    // Not a JWS at all; twice the header.
    assert_assertion_refused(&gw, &bsn, "not-a-token", "malformed").await;

    // Nothing about the employee of a forged assertion is recorded.
    let records = assert_chain_verifies(&gw.store().await).await;
    assert!(records
        .iter()
        .filter_map(|r| r.entry.actor.as_ref())
        .all(|a| a.sub.as_deref() != Some("emp-boss")));
}

#[tokio::test]
async fn expired_too_long_lived_and_future_actor_assertions_are_refused() {
    let gw = Gateway::start().await;
    let bsn = bsn(165);
    seed_demo_client(&gw.client("uwv"), &bsn).await;
    let key = sdd_idp_key();
    let sign = |c: &Value| jws(&sdd_header(), c, Algorithm::ES256, &key);
    let now = now();

    let mut c = claims("emp-1", &[]);
    c["iat"] = json!(now - 3600);
    c["exp"] = json!(now - 3500);
    assert_assertion_refused(&gw, &bsn, &sign(&c), "expired").await;

    // Fresh, but valid for an hour: above the five-minute maximum.
    let mut c = claims("emp-1", &[]);
    c["exp"] = json!(now + 3600);
    assert_assertion_refused(&gw, &bsn, &sign(&c), "too-long-lived").await;

    let mut c = claims("emp-1", &[]);
    c["iat"] = json!(now + 600);
    c["exp"] = json!(now + 700);
    assert_assertion_refused(&gw, &bsn, &sign(&c), "issued-in-future").await;
}

#[tokio::test]
async fn a_replayed_actor_assertion_is_refused() {
    let gw = Gateway::start().await;
    let bsn = bsn(166);
    seed_demo_client(&gw.client("uwv"), &bsn).await;
    let token = assertion("emp-1", &[]);
    let body = ask(&bsn, "job-mediation", &JOB_FIELDS);
    assert_permitted(&disclose_as_sdd(&gw, &body, Some(&token)).await);
    assert_assertion_refused(&gw, &bsn, &token, "replayed").await;
    // The refusal of a replay keeps who it claimed to be: the signature is the issuer's.
    let record = last_record(&gw, AuditKind::Disclosure).await;
    assert_eq!(record.entry.actor.unwrap().sub.as_deref(), Some("emp-1"));
}

#[tokio::test]
async fn actor_assertions_for_another_audience_or_issuer_are_refused() {
    let gw = Gateway::start().await;
    let bsn = bsn(167);
    seed_demo_client(&gw.client("uwv"), &bsn).await;
    let key = sdd_idp_key();
    let sign = |c: &Value| jws(&sdd_header(), c, Algorithm::ES256, &key);

    let mut c = claims("emp-1", &[]);
    c["aud"] = json!("another-gateway");
    assert_assertion_refused(&gw, &bsn, &sign(&c), "wrong-audience").await;

    let mut c = claims("emp-1", &[]);
    c["iss"] = json!("https://idp.elsewhere.example");
    assert_assertion_refused(&gw, &bsn, &sign(&c), "wrong-issuer").await;

    // A BSN as employee id is refused: the log must never learn one that way.
    let mut c = claims("emp-1", &[]);
    c["sub"] = json!(bsn);
    assert_assertion_refused(&gw, &bsn, &sign(&c), "claims").await;
}

#[tokio::test]
async fn an_actor_assertion_of_another_organisation_is_refused() {
    let gw = Gateway::start().await;
    let bsn = bsn(168);
    seed_demo_client(&gw.client("uwv"), &bsn).await;

    // Gorinchem's identity provider vouches for an employee; SDD's certificate sends it.
    let header = json!({ "alg": "EdDSA", "typ": "actor+jwt", "kid": "gorinchem-idp-1" });
    let mut c = claims("emp-g", &[]);
    c["org"] = json!(GORINCHEM);
    c["iss"] = json!(GORINCHEM);
    let token = jws(&header, &c, Algorithm::EdDSA, &gorinchem_idp_key());
    assert_assertion_refused(&gw, &bsn, &token, "other-organisation").await;

    // SDD's own key, but claiming another organisation.
    let mut c = claims("emp-1", &[]);
    c["org"] = json!(GORINCHEM);
    let token = jws(&sdd_header(), &c, Algorithm::ES256, &sdd_idp_key());
    assert_assertion_refused(&gw, &bsn, &token, "other-organisation").await;
}

#[tokio::test]
async fn a_refused_actor_assertion_on_a_handover_or_consent_is_audited_and_stores_nothing() {
    let gw = Gateway::start().await;
    let bsn = bsn(169);
    // UWV has no actor keys: any assertion it sends is refused.
    let token = assertion("emp-1", &[]);
    let record = demo::handover_request("job-mediation", &bsn, &demo::demo_handover());
    let r = post_as(&gw, "uwv", "/v1/handovers", &record, Some(&token)).await;
    assert_problem(&r, 403, "invalid-actor-assertion");
    let refused = last_record(&gw, AuditKind::HandoverRefused).await;
    assert_eq!(
        refused.entry.actor.and_then(|a| a.defect).as_deref(),
        Some("other-organisation")
    );

    let consent = sign_as_uwv(&demo_consent(&new_jti(), &bsn));
    let r = post_as(
        &gw,
        "uwv",
        "/v1/consents",
        &json!({ "token": consent }),
        Some(&token),
    )
    .await;
    assert_problem(&r, 403, "invalid-actor-assertion");
    let refused = last_record(&gw, AuditKind::ConsentRegistrationRefused).await;
    assert_eq!(
        refused.entry.reason.as_deref(),
        Some("invalid-actor-assertion")
    );
    // Nothing was stored: the subject has no consent, so a disclosure is refused.
    let r = disclose_as_sdd(&gw, &ask(&bsn, "job-mediation", &JOB_FIELDS), None).await;
    assert_refused(&r, "consent-required");
}

// ── the usage review ──────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn the_usage_report_counts_per_employee_for_the_officers_own_organisation() {
    let gw = Gateway::start().await;
    let (a, b) = (bsn(170), bsn(171));
    seed_demo_client(&gw.client("uwv"), &a).await;
    seed_demo_client(&gw.client("uwv"), &b).await;
    for (sub, who) in [("emp-a", &a), ("emp-a", &b), ("emp-a", &b), ("emp-b", &a)] {
        let body = ask(who, "job-mediation", &JOB_FIELDS);
        assert_permitted(&disclose_as_sdd(&gw, &body, Some(&assertion(sub, &[]))).await);
    }
    // A refusal (a field outside every grant) by emp-b.
    let body = ask(&a, "job-mediation", &["debts"]);
    let r = disclose_as_sdd(&gw, &body, Some(&assertion("emp-b", &[]))).await;
    assert_eq!(r.status, 403, "{}", text(&r));

    let today = gateway::audit::usage::amsterdam(chrono::Utc::now()).date();
    let path = format!("/v1/audit/usage-reports?from={today}&to={today}&format=csv");
    let officer = demo::person_token(&gw.certs, "fg-sdd", SDD, &["privacy-officer"]).unwrap();
    let r = gw
        .client("sdd")
        .send(Method::GET, &path, Some(&officer), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", text(&r));
    let csv = text(&r);
    let line = |emp: &str| {
        csv.lines()
            .find(|l| l.split(',').nth(1) == Some(emp))
            .unwrap_or_else(|| panic!("no row for {emp}: {csv}"))
            .to_owned()
    };
    // day,employee,issuer,disclosures,refusals,distinct_subjects,purposes,…
    let cells = |l: String| l.split(',').map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(cells(line("emp-a"))[3..7], ["3", "0", "2", "job-mediation"]);
    assert_eq!(cells(line("emp-b"))[3..7], ["1", "1", "1", "job-mediation"]);

    // UWV's officer sees none of SDD's employees; the HTML page is readable Dutch.
    let uwv_officer =
        demo::person_token(&gw.certs, "fg-uwv", devkit::demo::UWV, &["privacy-officer"]).unwrap();
    let path = format!("/v1/audit/usage-reports?from={today}&to={today}&format=html");
    let r = gw
        .client("uwv")
        .send(Method::GET, &path, Some(&uwv_officer), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", text(&r));
    assert!(text(&r).contains("Gebruiksrapportage"));
    assert!(!text(&r).contains("emp-a"));

    // Without the role: refused.
    let nobody = demo::person_token(&gw.certs, "x", SDD, &["covenant-admin"]).unwrap();
    let r = gw
        .client("sdd")
        .send(Method::GET, &path, Some(&nobody), None)
        .await
        .unwrap();
    assert_problem(&r, 403, "forbidden");
}
