//! End-to-end tests over real mutual TLS: each test starts its own gateway (demo setup, fresh
//! SQLite, or a fresh PostgreSQL database with `POORTWACHTER_TEST_DATABASE=postgres`) on an
//! ephemeral port and talks to it with the example organisation certificates.
//! Covers every refusal reason of DESIGN.md §3, TLS-level refusals, consent-token attacks,
//! handover validation, minimum disclosure, the no-BSN-oracle property, hostile bodies and the
//! audit chain.

mod common;

use base64::Engine;
use common::*;
use devkit::client::ClientError;
use devkit::demo::{GORINCHEM, UWV};
use gateway::consent_token::ConsentTokenError;
use hyper::Method;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

// ── helpers ─────────────────────────────────────────────────────────────────────────────────

fn sdd_consent_key() -> EncodingKey {
    gateway::keys::load_private(
        &certs_dir().join("consent-keys/sdd-ed25519.key.pem"),
        Algorithm::EdDSA,
    )
    .expect("SDD consent key loads")
}

fn uwv_header() -> Value {
    json!({ "alg": "ES256", "typ": "consent+jwt", "kid": "uwv-consent-1" })
}

fn claims_json(bsn: &str) -> Value {
    serde_json::to_value(demo_consent(&new_jti(), bsn)).unwrap()
}

/// Assert that a consent token was refused with `invalid-consent-token` for `why`.
#[track_caller]
fn assert_token_refused(r: &devkit::client::ClientResponse, why: ConsentTokenError) {
    let v = assert_problem(r, 422, "invalid-consent-token");
    let detail = v["detail"].as_str().unwrap_or_default();
    assert!(
        detail.ends_with(&why.to_string()),
        "refused because {why}, got detail {detail:?}"
    );
}

/// After a refused registration nothing was stored: SDD still needs a consent for `bsn`.
async fn assert_no_consent_for(gw: &Gateway, bsn: &str) {
    let r = gw
        .disclose("sdd", &ask(bsn, "job-mediation", &["own_transport"]))
        .await;
    assert_refused(&r, "consent-required");
}

/// Released field names of a permit.
fn released_keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v["released"]
        .as_object()
        .expect("released is an object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

const STORED_VALUES: [&str; 4] = ["088-8989898", "Orderpicker", "Logistiek", "lichte klachten"];

// ── who is calling ──────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn caller_without_client_certificate_is_refused_with_no_client_certificate() {
    let gw = Gateway::start().await;
    let anon = gw.anonymous_client();
    let bsn = bsn(1);
    let r = post(
        &anon,
        "/v1/disclosures",
        &ask(&bsn, "job-mediation", &["own_transport"]),
    )
    .await;
    let v = assert_problem(&r, 401, "no-client-certificate");
    assert!(v.get("disclosure_id").is_none());
    let r = post(&anon, "/v1/consents", &json!({ "token": "x.y.z" })).await;
    assert_problem(&r, 401, "no-client-certificate");
    let r = post(
        &anon,
        "/v1/handovers",
        &devkit::demo::handover_request(
            "job-mediation",
            &bsn,
            &json!({ "fields": { "own_transport": true } }),
        ),
    )
    .await;
    assert_problem(&r, 401, "no-client-certificate");
    let r = anon
        .send(Method::POST, "/v1/consents/some-id/revoke", None, None)
        .await
        .expect("answered");
    assert_problem(&r, 401, "no-client-certificate");
    // Liveness needs no certificate.
    assert_eq!(anon.get("/healthz").await.expect("answered").status, 200);
}

#[tokio::test]
async fn certificate_of_an_unknown_organisation_is_refused_with_unknown_organisation() {
    let gw = Gateway::start().await;
    let bsn = bsn(2);
    let r = gw
        .disclose(
            "unknown-org",
            &ask(&bsn, "job-mediation", &["own_transport"]),
        )
        .await;
    let v = assert_problem(&r, 403, "unknown-organisation");
    assert!(v.get("disclosure_id").is_none());
    let token = sign_as_uwv(&demo_consent(&new_jti(), &bsn));
    let r = gw.register_as("unknown-org", &token).await;
    assert_problem(&r, 403, "unknown-organisation");
    let r = gw
        .put_handover(
            "unknown-org",
            "job-mediation",
            &bsn,
            &devkit::demo::demo_handover(),
        )
        .await;
    assert_problem(&r, 403, "unknown-organisation");
}

/// The named certificate is refused during the TLS handshake: no HTTP answer at all.
async fn assert_refused_at_handshake(name: &str) {
    let gw = Gateway::start().await;
    let c = gw.client(name);
    let err = c
        .post_json(
            "/v1/disclosures",
            &ask(&bsn(3), "job-mediation", &["own_transport"]),
        )
        .await
        .expect_err("no HTTP answer for a refused certificate");
    assert!(
        matches!(err, ClientError::Handshake { .. } | ClientError::Http(_)),
        "the TCP connection was accepted and the TLS handshake refused: {err:?}"
    );
    let err = c.get("/healthz").await.expect_err("refused again");
    assert!(
        matches!(err, ClientError::Handshake { .. } | ClientError::Http(_)),
        "{err:?}"
    );
    // The gateway is unharmed.
    let ok = gw.client("sdd").get("/healthz").await.expect("answered");
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn certificate_from_a_foreign_ca_is_refused_at_the_tls_handshake() {
    assert_refused_at_handshake("foreign").await;
}

#[tokio::test]
async fn expired_certificate_is_refused_at_the_tls_handshake() {
    assert_refused_at_handshake("expired").await;
}

#[tokio::test]
async fn revoked_certificate_is_refused_at_the_tls_handshake() {
    assert_refused_at_handshake("revoked").await;
}

// ── disclosure refusals ─────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn municipality_outside_the_covenant_is_refused_with_no_active_covenant() {
    let gw = Gateway::start().await;
    let bsn = bsn(10);
    gw.register_demo_consent(&bsn).await;
    for purpose in ["job-mediation", "bijstand-intake"] {
        let r = gw
            .disclose("gorinchem", &ask(&bsn, purpose, &["own_transport"]))
            .await;
        let v = assert_problem(&r, 403, "no-active-covenant");
        assert!(v.get("released").is_none());
    }
}

#[tokio::test]
async fn purpose_the_covenant_does_not_grant_is_refused_with_purpose_not_granted() {
    let gw = Gateway::start().await;
    let bsn = bsn(11);
    gw.register_demo_consent(&bsn).await;
    let r = gw
        .disclose("sdd", &ask(&bsn, "debt-counselling", &["debt_assistance"]))
        .await;
    assert_refused(&r, "purpose-not-granted");
    // UWV is a party, but only as source: it is granted nothing as recipient.
    let r = gw
        .disclose("uwv", &ask(&bsn, "job-mediation", &["own_transport"]))
        .await;
    assert_refused(&r, "purpose-not-granted");
}

#[tokio::test]
async fn client_without_consent_is_refused_with_consent_required() {
    let gw = Gateway::start().await;
    let bsn = bsn(12);
    let r = gw
        .disclose("sdd", &ask(&bsn, "job-mediation", &["own_transport"]))
        .await;
    let id = assert_refused(&r, "consent-required");
    assert!(id.starts_with("dsc_"));
    // Storing consent-bound data without a consent is refused too.
    let r = gw
        .put_handover("uwv", "job-mediation", &bsn, &devkit::demo::demo_handover())
        .await;
    assert_problem(&r, 403, "consent-required");
}

#[tokio::test]
async fn revoked_consent_is_refused_with_consent_revoked() {
    let gw = Gateway::start().await;
    let bsn = bsn(13);
    let jti = gw.register_demo_consent(&bsn).await;
    let r = gw
        .disclose("sdd", &ask(&bsn, "job-mediation", &["own_transport"]))
        .await;
    assert_permitted(&r);

    // Only the issuer may revoke.
    let path = format!("/v1/consents/{jti}/revoke");
    let r = post(&gw.client("sdd"), &path, &json!({})).await;
    assert_problem(&r, 403, "not-consent-issuer");
    let r = gw
        .client("uwv")
        .send(Method::POST, &path, None, None)
        .await
        .expect("answered");
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["consent_id"], jti);

    let r = gw
        .disclose("sdd", &ask(&bsn, "job-mediation", &["own_transport"]))
        .await;
    assert_refused(&r, "consent-revoked");

    // Irreversible: a second revocation is a conflict; an unknown id is not found.
    let r = gw
        .client("uwv")
        .send(Method::POST, &path, None, None)
        .await
        .expect("answered");
    assert_problem(&r, 409, "consent-revoked");
    let r = gw
        .client("uwv")
        .send(Method::POST, "/v1/consents/consent_nope/revoke", None, None)
        .await
        .expect("answered");
    assert_problem(&r, 404, "not-found");
}

#[tokio::test]
async fn consent_past_its_exp_but_within_leeway_registers_and_is_refused_with_consent_expired() {
    let gw = Gateway::start().await;
    let bsn = bsn(14);
    let mut claims = demo_consent(&new_jti(), &bsn);
    // The verifier allows 60 s of clock skew at registration; the decision uses the exact exp.
    claims.exp = now() - 30;
    let r = gw.register_as("uwv", &sign_as_uwv(&claims)).await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let r = gw
        .disclose("sdd", &ask(&bsn, "job-mediation", &["own_transport"]))
        .await;
    assert_refused(&r, "consent-expired");
}

#[tokio::test]
async fn fields_outside_the_grant_are_refused_with_field_not_granted() {
    let gw = Gateway::start().await;
    let bsn = bsn(15);
    gw.register_demo_consent(&bsn).await;
    let r = gw
        .disclose(
            "sdd",
            &ask(
                &bsn,
                "job-mediation",
                &["debt_assistance", "addiction_treatment_history"],
            ),
        )
        .await;
    assert_refused(&r, "field-not-granted");
    let v = r.json();
    assert_eq!(
        v["withheld"],
        json!([
            { "field": "debt_assistance", "reason": "field-not-granted" },
            { "field": "addiction_treatment_history", "reason": "field-not-granted" }
        ])
    );
    // On a legal-obligation grant too: only ww_end_date and adviser_contact are granted.
    let r = gw
        .disclose("sdd", &ask(&bsn, "bijstand-intake", &["own_transport"]))
        .await;
    assert_refused(&r, "field-not-granted");
}

#[tokio::test]
async fn bsn_failing_the_eleven_check_is_refused_with_invalid_bsn() {
    let gw = Gateway::start().await;
    for bad in [
        "123456789",
        "12345678",
        "1234567890",
        "abcdefghi",
        "000000000",
    ] {
        let r = gw
            .disclose("sdd", &ask(bad, "job-mediation", &["own_transport"]))
            .await;
        let v = assert_problem(&r, 400, "invalid-bsn");
        assert!(!text(&r).contains(bad), "the answer does not echo the BSN");
        assert!(v.get("disclosure_id").is_none());

        let r = gw
            .put_handover(
                "uwv",
                "bijstand-intake",
                bad,
                &json!({ "fields": { "ww_end_date": "2027-02-28" } }),
            )
            .await;
        assert_problem(&r, 400, "invalid-bsn");
        assert!(!text(&r).contains(bad), "the answer does not echo the BSN");
    }
    // A BSN as a number is not a BSN either.
    let r = gw
        .disclose(
            "sdd",
            &json!({ "subject": { "bsn": 111222333 }, "purpose": "job-mediation" }),
        )
        .await;
    assert_eq!(r.status, 400, "{}", text(&r));
}

#[tokio::test]
async fn malformed_disclosure_bodies_are_refused_with_malformed_request() {
    let gw = Gateway::start().await;
    let sdd = gw.client("sdd");
    let person = bsn(16);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "broken JSON",
            format!(r#"{{"subject":{{"bsn":"{person}"}},"purpose":"#).into_bytes(),
        ),
        (
            "unknown member",
            serde_json::to_vec(&json!({
                "subject": { "bsn": person },
                "purpose": "job-mediation",
                "colour": "red-secret-value"
            }))
            .unwrap(),
        ),
        (
            "unknown member in subject",
            serde_json::to_vec(&json!({
                "subject": { "bsn": person, "name": "red-secret-value" },
                "purpose": "job-mediation"
            }))
            .unwrap(),
        ),
        (
            "fields of the wrong type",
            serde_json::to_vec(&json!({
                "subject": { "bsn": person },
                "purpose": "job-mediation",
                "fields": "own_transport"
            }))
            .unwrap(),
        ),
        (
            "purpose of the wrong type",
            serde_json::to_vec(&json!({ "subject": { "bsn": person }, "purpose": 7 })).unwrap(),
        ),
        (
            "missing purpose",
            serde_json::to_vec(&json!({ "subject": { "bsn": person } })).unwrap(),
        ),
        (
            "a JSON array",
            serde_json::to_vec(&json!(["red-secret-value"])).unwrap(),
        ),
    ];
    for (what, body) in cases {
        let r = post_raw(&sdd, "/v1/disclosures", body).await;
        assert_eq!(r.status, 400, "{what}: {}", text(&r));
        let v = assert_problem(&r, 400, "malformed-request");
        let detail = v["detail"].as_str().unwrap_or_default();
        assert!(!detail.contains("red-secret-value"), "{what}: {detail}");
        assert!(
            !text(&r).contains(&person),
            "{what}: the answer does not echo the BSN"
        );
        assert!(v.get("disclosure_id").is_none(), "{what}");
    }
    // The same connection pool still works.
    assert_eq!(sdd.get("/healthz").await.expect("answered").status, 200);
}

/// A trigger that makes every insert into the audit log fail, on either backend.
enum AuditOutage {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl AuditOutage {
    async fn begin(url: &str) -> AuditOutage {
        use sqlx::Connection;
        if url.starts_with("sqlite:") {
            let mut db = sqlx::SqliteConnection::connect(url)
                .await
                .expect("test connects to the gateway's SQLite file");
            sqlx::query(
                "CREATE TRIGGER audit_down BEFORE INSERT ON audit_log \
                 BEGIN SELECT RAISE(ABORT, 'down'); END;",
            )
            .execute(&mut db)
            .await
            .expect("trigger created");
            AuditOutage::Sqlite(db)
        } else {
            let mut db = postgres_connection(url).await;
            sqlx::raw_sql(
                "CREATE FUNCTION audit_down() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'down'; END $$; \
                 CREATE TRIGGER audit_down BEFORE INSERT ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION audit_down();",
            )
            .execute(&mut db)
            .await
            .expect("trigger created");
            AuditOutage::Postgres(db)
        }
    }

    async fn end(self) {
        match self {
            AuditOutage::Sqlite(mut db) => {
                sqlx::query("DROP TRIGGER audit_down")
                    .execute(&mut db)
                    .await
                    .expect("trigger dropped");
            }
            AuditOutage::Postgres(mut db) => {
                sqlx::raw_sql("DROP TRIGGER audit_down ON audit_log; DROP FUNCTION audit_down();")
                    .execute(&mut db)
                    .await
                    .expect("trigger dropped");
            }
        }
    }
}

#[tokio::test]
async fn audit_outage_fails_closed_with_audit_unavailable_and_releases_nothing() {
    let gw = Gateway::start().await;
    let bsn = bsn(17);
    gw.register_demo_consent(&bsn).await;
    let r = gw
        .put_handover("uwv", "job-mediation", &bsn, &devkit::demo::demo_handover())
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));

    // Break the audit store for real: every insert into the log aborts.
    let outage = AuditOutage::begin(&gw.db_url()).await;

    let before = audit_records(&gw.store().await).await.len();
    let permit = ask(&bsn, "job-mediation", &["own_transport", "adviser_contact"]);
    let r = gw.disclose("sdd", &permit).await;
    let v = assert_problem(&r, 503, "audit-unavailable");
    assert!(v.get("released").is_none(), "{}", text(&r));
    assert!(v.get("disclosure_id").is_none(), "{}", text(&r));
    for value in STORED_VALUES {
        assert!(
            !text(&r).contains(value),
            "nothing is released: {}",
            text(&r)
        );
    }
    // A refusal must be audited too, so it also fails closed.
    let r = gw
        .disclose("gorinchem", &ask(&bsn, "job-mediation", &["own_transport"]))
        .await;
    assert_problem(&r, 503, "audit-unavailable");
    let r = gw
        .disclose(
            "sdd",
            &ask(&common::bsn(18), "job-mediation", &["own_transport"]),
        )
        .await;
    assert_problem(&r, 503, "audit-unavailable");
    assert_eq!(
        audit_records(&gw.store().await).await.len(),
        before,
        "nothing reached the log"
    );

    // Repaired: the same request is answered and the chain continues intact.
    outage.end().await;
    let r = gw.disclose("sdd", &permit).await;
    let v = assert_permitted(&r);
    assert_eq!(
        released_keys(&v),
        sorted(&["adviser_contact", "own_transport"])
    );
    let store = gw.store().await;
    assert_audited(&store, &[v["disclosure_id"].as_str().unwrap().to_owned()]).await;
    assert_chain_verifies(&store).await;

    // Operators see the outage in /metrics: the three failed commits, and records again after.
    let r = gw
        .anonymous_client()
        .get("/metrics")
        .await
        .expect("metrics answered");
    let metrics = text(&r);
    assert!(
        metrics.contains("poortwachter_audit_commit_failures_total 3\n"),
        "{metrics}"
    );
    let counter = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    let records = counter("poortwachter_audit_records_total ");
    assert!(records >= 1, "{metrics}");
    // Every request that waited for the audit log is timed, the refused ones included.
    let waits = counter("poortwachter_audit_wait_duration_seconds_count ");
    assert!(
        waits >= records + 3,
        "{waits} waits for {records} records + 3 failed"
    );
}

// ── consent-token attacks (POST /v1/consents) ───────────────────────────────────────────────

#[tokio::test]
async fn consent_token_with_alg_none_is_refused() {
    let gw = Gateway::start().await;
    let bsn = bsn(20);
    let header = json!({ "alg": "none", "typ": "consent+jwt", "kid": "uwv-consent-1" });
    let input = format!(
        "{}.{}",
        b64url(&serde_json::to_vec(&header).unwrap()),
        b64url(&serde_json::to_vec(&claims_json(&bsn)).unwrap())
    );
    for token in [format!("{input}."), input.clone()] {
        let r = gw.register_as("uwv", &token).await;
        assert_problem(&r, 422, "invalid-consent-token");
    }
    assert_no_consent_for(&gw, &bsn).await;
}

#[tokio::test]
async fn consent_token_hmac_keyed_with_the_issuers_public_key_is_refused() {
    let gw = Gateway::start().await;
    let bsn = bsn(21);
    let public_pem = std::fs::read(certs_dir().join("consent-keys/uwv-es256.pub.pem")).unwrap();
    let key = EncodingKey::from_secret(&public_pem);
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let header =
            json!({ "alg": format!("{alg:?}"), "typ": "consent+jwt", "kid": "uwv-consent-1" });
        let token = jws(&header, &claims_json(&bsn), alg, &key);
        let r = gw.register_as("uwv", &token).await;
        assert_token_refused(&r, ConsentTokenError::AlgorithmNotAllowed);
    }
    assert_no_consent_for(&gw, &bsn).await;
}

#[tokio::test]
async fn consent_token_with_an_unknown_kid_is_refused() {
    let gw = Gateway::start().await;
    let bsn = bsn(22);
    let claims = claims_json(&bsn);
    let key = uwv_consent_key();
    let unknown = json!({ "alg": "ES256", "typ": "consent+jwt", "kid": "uwv-consent-9" });
    let r = gw
        .register_as("uwv", &jws(&unknown, &claims, Algorithm::ES256, &key))
        .await;
    assert_token_refused(&r, ConsentTokenError::UnknownKey);
    let no_kid = json!({ "alg": "ES256", "typ": "consent+jwt" });
    let r = gw
        .register_as("uwv", &jws(&no_kid, &claims, Algorithm::ES256, &key))
        .await;
    assert_token_refused(&r, ConsentTokenError::UnknownKey);
    assert_no_consent_for(&gw, &bsn).await;
}

#[tokio::test]
async fn consent_token_expired_beyond_the_leeway_is_refused() {
    let gw = Gateway::start().await;
    let bsn = bsn(23);
    let mut claims = demo_consent(&new_jti(), &bsn);
    claims.exp = now() - 3600;
    let r = gw.register_as("uwv", &sign_as_uwv(&claims)).await;
    assert_token_refused(&r, ConsentTokenError::Expired);
    assert_no_consent_for(&gw, &bsn).await;
}

#[tokio::test]
async fn consent_token_not_yet_valid_is_refused() {
    let gw = Gateway::start().await;
    let bsn = bsn(24);
    let mut claims = demo_consent(&new_jti(), &bsn);
    claims.nbf = now() + 3600;
    let r = gw.register_as("uwv", &sign_as_uwv(&claims)).await;
    assert_token_refused(&r, ConsentTokenError::NotYetValid);
    let mut claims = demo_consent(&new_jti(), &bsn);
    claims.iat = now() + 3600;
    let r = gw.register_as("uwv", &sign_as_uwv(&claims)).await;
    assert_token_refused(&r, ConsentTokenError::IssuedInFuture);
    assert_no_consent_for(&gw, &bsn).await;
}

#[tokio::test]
async fn consent_token_for_another_audience_is_refused() {
    let gw = Gateway::start().await;
    let bsn = bsn(25);
    let mut claims = demo_consent(&new_jti(), &bsn);
    claims.aud = "poortwachter-elsewhere".into();
    let r = gw.register_as("uwv", &sign_as_uwv(&claims)).await;
    assert_token_refused(&r, ConsentTokenError::WrongAudience);
    assert_no_consent_for(&gw, &bsn).await;
}

#[tokio::test]
async fn consent_token_with_a_tampered_payload_is_refused() {
    let gw = Gateway::start().await;
    let bsn = bsn(26);
    let token = sign_as_uwv(&demo_consent(&new_jti(), &bsn));
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .unwrap();
    let mut claims: Value = serde_json::from_slice(&payload).unwrap();
    // Widen the consent to a special-category field, keep the signature.
    claims["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!("mental_health_complaints"));
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url(&serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    let r = gw.register_as("uwv", &tampered).await;
    assert_token_refused(&r, ConsentTokenError::BadSignature);
    // A flipped signature bit is refused as well.
    let mut sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[2])
        .unwrap();
    sig[5] ^= 0x01;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], b64url(&sig));
    let r = gw.register_as("uwv", &flipped).await;
    assert_token_refused(&r, ConsentTokenError::BadSignature);
    assert_no_consent_for(&gw, &bsn).await;
}

#[tokio::test]
async fn consent_token_signed_with_another_partys_key_is_refused() {
    let gw = Gateway::start().await;
    let bsn = bsn(27);
    // Claims say UWV issued it; the signature is SDD's (a valid key of another organisation).
    let header = json!({ "alg": "EdDSA", "typ": "consent+jwt", "kid": "sdd-consent-1" });
    let token = jws(
        &header,
        &claims_json(&bsn),
        Algorithm::EdDSA,
        &sdd_consent_key(),
    );
    for who in ["uwv", "sdd"] {
        let r = gw.register_as(who, &token).await;
        assert_token_refused(&r, ConsentTokenError::KeyNotOfIssuer);
    }
    // UWV's kid with SDD's key: the signature does not verify.
    let header = json!({ "alg": "EdDSA", "typ": "consent+jwt", "kid": "uwv-consent-1" });
    let token = jws(
        &header,
        &claims_json(&bsn),
        Algorithm::EdDSA,
        &sdd_consent_key(),
    );
    let r = gw.register_as("uwv", &token).await;
    assert_problem(&r, 422, "invalid-consent-token");
    assert_no_consent_for(&gw, &bsn).await;
}

#[tokio::test]
async fn consent_token_presented_by_another_organisation_is_refused_with_not_consent_issuer() {
    let gw = Gateway::start().await;
    let bsn = bsn(28);
    let token = sign_as_uwv(&demo_consent(&new_jti(), &bsn));
    for who in ["sdd", "gorinchem"] {
        let r = gw.register_as(who, &token).await;
        assert_problem(&r, 403, "not-consent-issuer");
    }
    assert_no_consent_for(&gw, &bsn).await;
    // The rightful issuer can still register it afterwards.
    let r = gw.register_as("uwv", &token).await;
    assert_eq!(r.status, 201, "{}", text(&r));
}

#[tokio::test]
async fn consent_token_registered_twice_is_refused_with_duplicate_consent() {
    let gw = Gateway::start().await;
    let bsn = bsn(29);
    let jti = new_jti();
    let token = sign_as_uwv(&demo_consent(&jti, &bsn));
    let r = gw.register_as("uwv", &token).await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let r = gw.register_as("uwv", &token).await;
    assert_problem(&r, 409, "duplicate-consent");
    // Same jti, different content: still a duplicate.
    let mut other = demo_consent(&jti, &common::bsn(30));
    other.fields.truncate(1);
    let r = gw.register_as("uwv", &sign_as_uwv(&other)).await;
    assert_problem(&r, 409, "duplicate-consent");
    assert_no_consent_for(&gw, &common::bsn(30)).await;
}

#[tokio::test]
async fn consent_token_with_the_wrong_typ_header_is_refused() {
    let gw = Gateway::start().await;
    let bsn = bsn(31);
    let claims = claims_json(&bsn);
    let key = uwv_consent_key();
    for typ in [json!("JWT"), json!("at+jwt"), Value::Null] {
        let mut header = uwv_header();
        if typ.is_null() {
            header.as_object_mut().unwrap().remove("typ");
        } else {
            header["typ"] = typ;
        }
        let r = gw
            .register_as("uwv", &jws(&header, &claims, Algorithm::ES256, &key))
            .await;
        assert_token_refused(&r, ConsentTokenError::WrongType);
    }
    // The same claims with the right header are accepted: only the header was wrong.
    let r = gw
        .register_as("uwv", &jws(&uwv_header(), &claims, Algorithm::ES256, &key))
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
}

#[tokio::test]
async fn garbage_consent_tokens_are_refused_with_invalid_consent_token() {
    let gw = Gateway::start().await;
    for token in ["", "not-a-token", "a.b.c", "...", "eyJhbGciOiJFUzI1NiJ9"] {
        let r = gw.register_as("uwv", token).await;
        assert_problem(&r, 422, "invalid-consent-token");
    }
    let r = post(&gw.client("uwv"), "/v1/consents", &json!({ "jwt": "x" })).await;
    assert_problem(&r, 400, "malformed-request");
}

// ── consent scope ───────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn consent_for_another_purpose_does_not_permit_job_mediation() {
    let gw = Gateway::start().await;
    let bsn = bsn(40);
    let mut claims = demo_consent(&new_jti(), &bsn);
    claims.purpose = "bijstand-intake".parse().unwrap();
    let r = gw.register_as("uwv", &sign_as_uwv(&claims)).await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let r = gw
        .disclose("sdd", &ask(&bsn, "job-mediation", &["own_transport"]))
        .await;
    assert_refused(&r, "consent-required");
}

#[tokio::test]
async fn consent_naming_another_recipient_does_not_permit_the_sociale_dienst() {
    let gw = Gateway::start().await;
    let bsn = bsn(41);
    let mut claims = demo_consent(&new_jti(), &bsn);
    claims.recipients = vec![UWV.parse().unwrap()];
    let r = gw.register_as("uwv", &sign_as_uwv(&claims)).await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let r = gw
        .disclose("sdd", &ask(&bsn, "job-mediation", &["own_transport"]))
        .await;
    assert_refused(&r, "consent-required");
    // A recipient outside the covenant cannot even be named.
    let mut claims = demo_consent(&new_jti(), &bsn);
    claims.recipients = vec![GORINCHEM.parse().unwrap()];
    let r = gw.register_as("uwv", &sign_as_uwv(&claims)).await;
    assert_problem(&r, 422, "invalid-consent-token");
}

#[tokio::test]
async fn consent_for_another_subject_does_not_permit_disclosure() {
    let gw = Gateway::start().await;
    gw.register_demo_consent(&bsn(42)).await;
    let r = gw
        .disclose("sdd", &ask(&bsn(43), "job-mediation", &["own_transport"]))
        .await;
    assert_refused(&r, "consent-required");
}

// ── handovers ───────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn handover_with_unacceptable_fields_is_refused_naming_them_and_stores_nothing() {
    let gw = Gateway::start().await;
    let bsn = bsn(50);
    gw.register_demo_consent(&bsn).await;

    let cases = [
        (
            json!({ "fields": { "own_transport": true, "shoe_size": 44 } }),
            "field-not-in-catalogue",
            vec!["shoe_size"],
        ),
        (
            json!({ "fields": { "own_transport": true, "available_hours_per_week": "many" } }),
            "field-type-mismatch",
            vec!["available_hours_per_week"],
        ),
        (
            json!({ "fields": { "own_transport": true, "education_level": "phd" } }),
            "field-type-mismatch",
            vec!["education_level"],
        ),
        (
            json!({ "fields": { "own_transport": true, "debt_assistance": true } }),
            "field-not-granted",
            vec!["debt_assistance"],
        ),
        (
            json!({ "fields": {
                "own_transport": true,
                "debt_assistance": true,
                "job_ready": "yes",
                "Not A Field": 1
            } }),
            "field-not-in-catalogue",
            vec!["Not A Field", "debt_assistance", "job_ready"],
        ),
    ];
    for (record, reason, named) in cases {
        let r = gw.put_handover("uwv", "job-mediation", &bsn, &record).await;
        let v = assert_problem(&r, 422, reason);
        let mut fields: Vec<String> = v["fields"]
            .as_array()
            .unwrap_or_else(|| panic!("the problem names the fields: {}", text(&r)))
            .iter()
            .map(|f| f["field"].as_str().unwrap().to_owned())
            .collect();
        fields.sort();
        assert_eq!(fields, sorted(&named), "{}", text(&r));
        assert!(!text(&r).contains("many") && !text(&r).contains("phd"));
    }
    // A body that is not a record at all.
    let r = gw
        .put_handover("uwv", "job-mediation", &bsn, &json!({ "fields": {} }))
        .await;
    assert_problem(&r, 400, "malformed-request");
    let r = gw
        .put_handover(
            "uwv",
            "job-mediation",
            &bsn,
            &json!({ "own_transport": true }),
        )
        .await;
    assert_problem(&r, 400, "malformed-request");

    // Nothing was stored: the permitted recipient learns there is no record.
    let r = gw
        .disclose("sdd", &ask(&bsn, "job-mediation", &["own_transport"]))
        .await;
    let v = assert_permitted(&r);
    assert_eq!(v["record"], "no-record");
    assert_eq!(v["released"], json!({}));
}

#[tokio::test]
async fn organisation_that_is_not_a_source_cannot_store_handovers() {
    let gw = Gateway::start().await;
    let bsn = bsn(51);
    gw.register_demo_consent(&bsn).await;
    let record = json!({ "fields": { "ww_end_date": "2027-02-28" } });
    for who in ["gorinchem", "sdd"] {
        for purpose in ["job-mediation", "bijstand-intake"] {
            let r = gw.put_handover(who, purpose, &bsn, &record).await;
            assert_problem(&r, 403, "not-a-source");
        }
    }
    let r = gw
        .put_handover("uwv", "debt-counselling", &bsn, &record)
        .await;
    assert_problem(&r, 403, "not-a-source");
    let r = gw
        .disclose(
            "sdd",
            &ask(&bsn, "bijstand-intake", &["ww_end_date", "adviser_contact"]),
        )
        .await;
    assert_eq!(assert_permitted(&r)["record"], "no-record");
}

// ── minimum disclosure ──────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn disclosure_releases_exactly_the_requested_granted_and_consented_fields() {
    let gw = Gateway::start().await;
    let bsn = bsn(60);
    let jti = gw.register_demo_consent(&bsn).await;
    let handover = devkit::demo::demo_handover();
    let r = gw
        .put_handover("uwv", "job-mediation", &bsn, &handover)
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));

    let requested = [
        "own_transport",            // granted, consented → released
        "education_level",          // granted, consented → released
        "ww_end_date",              // granted, consented → released
        "cv",                       // granted, not consented (and not stored)
        "certificates",             // granted and stored, not consented
        "mental_health_complaints", // special category, granted, not consented
        "debt_assistance",          // in the catalogue, not granted
        "shoe_size",                // not in the catalogue
    ];
    let r = gw
        .disclose("sdd", &ask(&bsn, "job-mediation", &requested))
        .await;
    let v = assert_permitted(&r);
    assert_eq!(v["record"], "found");
    assert_eq!(
        released_keys(&v),
        sorted(&["education_level", "own_transport", "ww_end_date"])
    );
    for (k, value) in v["released"].as_object().unwrap() {
        assert_eq!(value, &handover["fields"][k], "{k} is released as stored");
    }
    assert_eq!(
        v["withheld"],
        json!([
            { "field": "cv", "reason": "consent-does-not-cover-field" },
            { "field": "certificates", "reason": "consent-does-not-cover-field" },
            { "field": "mental_health_complaints", "reason": "special-category-not-consented" },
            { "field": "debt_assistance", "reason": "field-not-granted" },
            { "field": "shoe_size", "reason": "unknown-field" }
        ])
    );
    for value in ["Heftruck", "Orderpicker", "lichte klachten"] {
        assert!(!text(&r).contains(value), "{value} is not released");
    }
    assert_eq!(v["basis"]["consent"], jti);
    assert_eq!(v["basis"]["legal_basis"], "consent");
    assert_eq!(v["basis"]["source"], UWV);

    // The audit record names exactly the released fields.
    let id = v["disclosure_id"].as_str().unwrap();
    let store = gw.store().await;
    let records = assert_chain_verifies(&store).await;
    let rec = records.iter().find(|r| r.entry.id == id).expect("audited");
    assert_eq!(
        rec.entry.fields_released,
        sorted(&["education_level", "own_transport", "ww_end_date"])
    );
    assert_eq!(rec.entry.consent_id.as_deref(), Some(jti.as_str()));

    // Legal obligation: no consent needed, only the two granted fields.
    let r = gw
        .put_handover(
            "uwv",
            "bijstand-intake",
            &bsn,
            &json!({ "fields": {
                "ww_end_date": "2027-02-28",
                "adviser_contact": "J. de Vries, UWV Dordrecht, 088-8989898"
            } }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let r = gw
        .disclose(
            "sdd",
            &ask(&bsn, "bijstand-intake", &["ww_end_date", "own_transport"]),
        )
        .await;
    let v = assert_permitted(&r);
    assert_eq!(released_keys(&v), sorted(&["ww_end_date"]));
    assert_eq!(v["basis"]["legal_basis"], "legal-obligation");
    assert_eq!(v["basis"]["consent"], Value::Null);
}

/// Minimisation by default: a request that names no fields (absent, or an empty list) is refused
/// with `fields-required` before anything is decided, read or released, whoever asks.
#[tokio::test]
async fn disclosure_request_without_fields_is_refused_with_fields_required_before_any_decision() {
    let gw = Gateway::start().await;
    let bsn = bsn(55);
    gw.register_demo_consent(&bsn).await;
    let r = gw
        .put_handover("uwv", "job-mediation", &bsn, &devkit::demo::demo_handover())
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let store = gw.store().await;
    let before = audit_records(&store).await.len();
    let subject = json!({ "bsn": bsn });
    let cases = [
        (
            "sdd",
            json!({ "subject": subject, "purpose": "job-mediation" }),
        ),
        (
            "sdd",
            json!({ "subject": subject, "purpose": "job-mediation", "fields": [] }),
        ),
        (
            "sdd",
            json!({ "subject": subject, "purpose": "bijstand-intake", "fields": [] }),
        ),
        // Before the covenant is looked at: the answer does not depend on who asks.
        (
            "gorinchem",
            json!({ "subject": subject, "purpose": "job-mediation", "fields": [] }),
        ),
    ];
    for (who, body) in &cases {
        let r = gw.disclose(who, body).await;
        let v = assert_problem(&r, 400, "fields-required");
        assert!(v.get("disclosure_id").is_none(), "no decision was made");
        assert!(v.get("released").is_none() && v.get("withheld").is_none());
        for value in STORED_VALUES {
            assert!(!text(&r).contains(value), "{value} is not released");
        }
        assert!(!text(&r).contains(&bsn));
    }
    // Nothing was decided, so nothing was recorded; the same request naming a field is served.
    assert_eq!(audit_records(&store).await.len(), before);
    let r = gw
        .disclose("sdd", &ask(&bsn, "job-mediation", &["own_transport"]))
        .await;
    assert_eq!(
        released_keys(&assert_permitted(&r)),
        sorted(&["own_transport"])
    );
}

#[tokio::test]
async fn revoking_consent_destroys_the_handover_record() {
    let gw = Gateway::start().await;
    let bsn = bsn(61);
    let jti = gw.register_demo_consent(&bsn).await;
    let r = gw
        .put_handover("uwv", "job-mediation", &bsn, &devkit::demo::demo_handover())
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    assert_eq!(r.json()["consent"], jti);
    let r = gw
        .disclose("sdd", &ask(&bsn, "job-mediation", &["own_transport"]))
        .await;
    assert_eq!(assert_permitted(&r)["record"], "found");

    let r = gw
        .client("uwv")
        .send(
            Method::POST,
            &format!("/v1/consents/{jti}/revoke"),
            None,
            None,
        )
        .await
        .expect("answered");
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["handovers_destroyed"], 1);

    // A fresh consent does not bring the destroyed record back.
    let again = gw.register_demo_consent(&bsn).await;
    let r = gw
        .disclose("sdd", &ask(&bsn, "job-mediation", &["own_transport"]))
        .await;
    let v = assert_permitted(&r);
    assert_eq!(v["record"], "no-record");
    assert_eq!(v["released"], json!({}));
    assert_eq!(v["basis"]["consent"], again);
}

// ── no BSN oracle ───────────────────────────────────────────────────────────────────────────

/// A refusal body without its (random) disclosure id.
fn without_id(r: &devkit::client::ClientResponse) -> (u16, Option<String>, Value) {
    let mut v = r.json();
    assert!(v.get("disclosure_id").is_some(), "{}", text(r));
    v.as_object_mut().unwrap().remove("disclosure_id");
    (r.status, r.content_type.clone(), v)
}

#[tokio::test]
async fn unauthorised_caller_cannot_tell_whether_a_bsn_is_known() {
    let gw = Gateway::start().await;
    let known = bsn(70);
    let unknown = bsn(71);
    gw.register_demo_consent(&known).await;
    for purpose in ["job-mediation", "bijstand-intake"] {
        let r = gw
            .put_handover(
                "uwv",
                purpose,
                &known,
                &json!({ "fields": { "ww_end_date": "2027-02-28" } }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", text(&r));
    }

    // Outside the covenant: the same answer for a client with consent and data and for a
    // BSN the gateway has never seen.
    for purpose in ["job-mediation", "bijstand-intake", "debt-counselling"] {
        for fields in [&["ww_end_date"][..], &["ww_end_date", "own_transport"], &[]] {
            let a = gw
                .disclose("gorinchem", &ask(&known, purpose, fields))
                .await;
            let b = gw
                .disclose("gorinchem", &ask(&unknown, purpose, fields))
                .await;
            if fields.is_empty() {
                assert_problem(&a, 400, "fields-required");
                assert_eq!((a.status, a.json()), (b.status, b.json()), "{purpose}");
            } else {
                assert_refused(&a, "no-active-covenant");
                assert_eq!(without_id(&a), without_id(&b), "{purpose}");
            }
        }
    }

    // A party without a matching consent: consent-required whether or not data is held.
    let third = bsn(72);
    let r = gw
        .put_handover(
            "uwv",
            "bijstand-intake",
            &third,
            &json!({ "fields": { "ww_end_date": "2027-02-28" } }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let a = gw
        .disclose("sdd", &ask(&third, "job-mediation", &["ww_end_date"]))
        .await;
    let b = gw
        .disclose("sdd", &ask(&unknown, "job-mediation", &["ww_end_date"]))
        .await;
    assert_refused(&a, "consent-required");
    assert_eq!(without_id(&a), without_id(&b));
}

// ── no BSN in a URL ─────────────────────────────────────────────────────────────────────────

/// Names under which a client's number might be put in a query string.
const SUBJECT_PARAMETERS: [&str; 3] = ["bsn", "subject", "burgerservicenummer"];

/// `path` with `person` under every name of [`SUBJECT_PARAMETERS`] in its query string.
fn in_query(path: &str, person: &str) -> String {
    let pairs: Vec<String> = SUBJECT_PARAMETERS
        .iter()
        .map(|name| format!("{name}={person}"))
        .collect();
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}{}", pairs.join("&"))
}

/// No citizen identifier in a URL: proxies and browsers record request lines. The routes that
/// once carried a BSN in their path find nothing, a subject in a query string is refused before
/// anything is read, and nothing about the person is stored, released or recorded.
#[tokio::test]
async fn a_bsn_in_a_url_finds_no_route_and_nothing_is_stored_released_or_recorded() {
    let gw = Gateway::start().await;
    let person = bsn(91);
    gw.register_demo_consent(&person).await;
    let config = gateway::config::Config::load(&gw.config_path).expect("config");
    let pseudonym = gateway::crypto::Pseudonymizer::new(
        &config
            .secret("secrets.pseudonym_key", 32)
            .expect("pseudonym key"),
    )
    .pseudonym(&person.parse().expect("valid BSN"));
    let store = gw.store().await;
    let before = audit_records(&store).await.last().map_or(0, |r| r.seq);
    let uwv = gw.client("uwv");
    let sdd = gw.client("sdd");
    let officer = devkit::demo::person_token(
        &gw.certs,
        "fg-1",
        devkit::demo::SDD,
        &["privacy-officer", "operator"],
    )
    .expect("token");
    let record = devkit::demo::demo_handover();
    let no_answer = |what: &str, r: &devkit::client::ClientResponse| {
        assert!(!text(r).contains(&person), "{what} echoes the BSN");
        for value in STORED_VALUES {
            assert!(!text(r).contains(value), "{what} releases {value}");
        }
    };

    // The handover route with the subject in its path, as it was (PUT) and as a POST.
    let body = serde_json::to_vec(&record).expect("json");
    for method in [Method::PUT, Method::POST] {
        let path = format!("/v1/handovers/job-mediation/{person}");
        let r = uwv
            .send(method.clone(), &path, None, Some(body.clone()))
            .await
            .expect("answered");
        assert_problem(&r, 404, "not-found");
        no_answer(&format!("{method} {path}"), &r);
    }
    // The subject in a query string instead of the body is not read: the body lacks it.
    let r = post(
        &uwv,
        &in_query("/v1/handovers?purpose=job-mediation", &person),
        &record,
    )
    .await;
    assert_problem(&r, 400, "malformed-request");
    no_answer("handover with the subject in the query", &r);
    let r = post(
        &sdd,
        &in_query("/v1/disclosures", &person),
        &json!({ "purpose": "job-mediation", "fields": ["own_transport"] }),
    )
    .await;
    assert_problem(&r, 400, "malformed-request");
    no_answer("disclosure with the subject in the query", &r);

    // The review API: the report route with the BSN in its path, and a subject filter in the
    // query, are gone; a POST takes its parameters in the body only.
    for path in [
        format!("/v1/audit/subjects/{person}"),
        format!("/v1/audit/subjects/{person}?format=html"),
    ] {
        let r = sdd
            .send(Method::GET, &path, Some(&officer), None)
            .await
            .expect("answered");
        assert_problem(&r, 404, "not-found");
        no_answer(&path, &r);
    }
    let filters = SUBJECT_PARAMETERS.iter().flat_map(|name| {
        ["/v1/audit/records", "/v1/audit/export"].map(|p| format!("{p}?{name}={person}"))
    });
    for path in filters {
        let r = sdd
            .send(Method::GET, &path, Some(&officer), None)
            .await
            .expect("answered");
        assert_problem(&r, 400, "malformed-request");
        no_answer(&path, &r);
    }
    for path in [
        "/v1/audit/subject-reports",
        "/v1/audit/records/search",
        "/v1/audit/export",
    ] {
        let url = in_query(path, &person);
        let r = sdd
            .send(
                Method::POST,
                &url,
                Some(&officer),
                Some(serde_json::to_vec(&json!({ "subject": { "bsn": person } })).expect("json")),
            )
            .await
            .expect("answered");
        assert_problem(&r, 400, "malformed-request");
        no_answer(&url, &r);
    }

    // Nothing was stored (the recipient is told there is no record), and nothing about the
    // person was decided or read on the strength of a URL.
    let r = gw
        .disclose("sdd", &ask(&person, "job-mediation", &["own_transport"]))
        .await;
    assert_eq!(assert_permitted(&r)["record"], "no-record");
    let records = audit_records(&store).await;
    let since: Vec<_> = records.iter().filter(|r| r.seq > before).collect();
    assert_eq!(
        since
            .iter()
            .filter(|r| r.entry.subject_pseudonym.as_deref() == Some(pseudonym.as_str()))
            .count(),
        1,
        "only the last disclosure is about the person: {since:#?}"
    );
}

// ── hostile bodies ──────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn oversized_body_is_refused_with_payload_too_large() {
    let gw = Gateway::start().await;
    let bsn = bsn(80);
    let big = "x".repeat(64 * 1024 + 1);
    let uwv = gw.client("uwv");
    let sdd = gw.client("sdd");

    let body = json!({
        "subject": { "bsn": bsn },
        "purpose": "job-mediation",
        "fields": [big]
    });
    let r = post(&sdd, "/v1/disclosures", &body).await;
    let v = assert_problem(&r, 413, "payload-too-large");
    assert!(v.get("disclosure_id").is_none());

    let r = post(&uwv, "/v1/consents", &json!({ "token": big })).await;
    assert_problem(&r, 413, "payload-too-large");

    let r = gw
        .put_handover(
            "uwv",
            "bijstand-intake",
            &bsn,
            &json!({ "fields": { "adviser_contact": big } }),
        )
        .await;
    assert_problem(&r, 413, "payload-too-large");

    // Far beyond the limit (1 MiB).
    let r = post_raw(&sdd, "/v1/disclosures", vec![b' '; 1024 * 1024]).await;
    assert_problem(&r, 413, "payload-too-large");

    // The gateway keeps answering on these clients.
    let r = gw
        .disclose("sdd", &ask(&bsn, "job-mediation", &["own_transport"]))
        .await;
    assert_refused(&r, "consent-required");
    assert_eq!(uwv.get("/healthz").await.expect("answered").status, 200);
}

#[tokio::test]
async fn hostile_bodies_get_a_client_error_problem_never_a_server_error_or_a_dropped_connection() {
    let gw = Gateway::start().await;
    let person = bsn(81);
    let mut bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("deeply nested arrays", "[".repeat(20_000).into_bytes()),
        (
            "deeply nested objects",
            format!(
                "{}1{}",
                r#"{"subject":"#.repeat(5_000),
                "}".repeat(5_000)
            )
            .into_bytes(),
        ),
        ("not UTF-8", vec![0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28]),
        ("binary garbage", (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect()),
        ("a bare string", br#""hello""#.to_vec()),
        ("null", b"null".to_vec()),
        ("a huge number", "9".repeat(5000).into_bytes()),
        (
            "a BSN as a huge number",
            format!(r#"{{"subject":{{"bsn":{}}},"purpose":"job-mediation"}}"#, "1".repeat(400))
                .into_bytes(),
        ),
        (
            "duplicate members",
            format!(
                r#"{{"subject":{{"bsn":"{person}"}},"purpose":"job-mediation","purpose":"job-mediation"}}"#
            )
            .into_bytes(),
        ),
        (
            "unterminated string",
            br#"{"subject":{"bsn":"111222333"#.to_vec(),
        ),
        ("trailing garbage", format!(r#"{{"subject":{{"bsn":"{person}"}},"purpose":"job-mediation"}} xx"#).into_bytes()),
    ];
    bodies.push(("a long field list", {
        let fields: Vec<String> = (0..3000).map(|i| format!("f{i}")).collect();
        serde_json::to_vec(&json!({
            "subject": { "bsn": person },
            "purpose": "job-mediation",
            "fields": fields
        }))
        .unwrap()
    }));

    for who in ["sdd", "uwv"] {
        let c = gw.client(who);
        for path in ["/v1/disclosures", "/v1/consents"] {
            for (what, body) in &bodies {
                let r = c
                    .send(Method::POST, path, None, Some(body.clone()))
                    .await
                    .unwrap_or_else(|e| panic!("{who} {path} {what}: no answer: {e}"));
                assert!(
                    (400..500).contains(&r.status),
                    "{who} {path} {what}: {} {}",
                    r.status,
                    text(&r)
                );
                assert_eq!(
                    r.content_type.as_deref(),
                    Some("application/problem+json"),
                    "{who} {path} {what}"
                );
                assert!(r.json()["reason"].is_string(), "{who} {path} {what}");
            }
        }
        for (what, body) in &bodies {
            let r = c
                .send(Method::POST, "/v1/handovers", None, Some(body.clone()))
                .await
                .unwrap_or_else(|e| panic!("{who} handover {what}: no answer: {e}"));
            assert!(
                (400..500).contains(&r.status),
                "{who} handover {what}: {}",
                text(&r)
            );
            assert_eq!(r.content_type.as_deref(), Some("application/problem+json"));
        }
    }
    // Wrong methods and paths are problems too.
    let sdd = gw.client("sdd");
    let r = sdd.get("/v1/disclosures").await.expect("answered");
    assert_problem(&r, 405, "method-not-allowed");
    let r = sdd.get("/v1/nothing-here").await.expect("answered");
    assert_problem(&r, 404, "not-found");
    let r = sdd
        .send(Method::PUT, "/v1/handovers", None, None)
        .await
        .expect("answered");
    assert_problem(&r, 405, "method-not-allowed");
}

// ── audit ───────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn every_disclosure_answer_is_audited_and_the_chain_verifies() {
    let gw = Gateway::start().await;
    let with_consent = bsn(90);
    let revoked = bsn(91);
    let expired = bsn(92);
    let without = bsn(93);
    gw.register_demo_consent(&with_consent).await;
    let r = gw
        .put_handover(
            "uwv",
            "job-mediation",
            &with_consent,
            &devkit::demo::demo_handover(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let jti = gw.register_demo_consent(&revoked).await;
    let r = gw
        .client("uwv")
        .send(
            Method::POST,
            &format!("/v1/consents/{jti}/revoke"),
            None,
            None,
        )
        .await
        .expect("answered");
    assert_eq!(r.status, 200);
    let mut claims = demo_consent(&new_jti(), &expired);
    claims.exp = now() - 30;
    assert_eq!(
        gw.register_as("uwv", &sign_as_uwv(&claims)).await.status,
        201
    );

    let cases = [
        (
            "sdd",
            ask(&with_consent, "job-mediation", &["own_transport", "cv"]),
            None,
        ),
        (
            "sdd",
            ask(
                &with_consent,
                "bijstand-intake",
                &["ww_end_date", "adviser_contact"],
            ),
            None,
        ),
        (
            "sdd",
            ask(&without, "job-mediation", &["own_transport"]),
            Some("consent-required"),
        ),
        (
            "sdd",
            ask(&revoked, "job-mediation", &["own_transport"]),
            Some("consent-revoked"),
        ),
        (
            "sdd",
            ask(&expired, "job-mediation", &["own_transport"]),
            Some("consent-expired"),
        ),
        (
            "sdd",
            ask(&with_consent, "debt-counselling", &["own_transport"]),
            Some("purpose-not-granted"),
        ),
        (
            "sdd",
            ask(&with_consent, "job-mediation", &["debt_assistance"]),
            Some("field-not-granted"),
        ),
        (
            "gorinchem",
            ask(&with_consent, "job-mediation", &["own_transport"]),
            Some("no-active-covenant"),
        ),
    ];
    let mut answers = Vec::new();
    for (who, body, refusal) in &cases {
        let r = gw.disclose(who, body).await;
        let id = match refusal {
            None => assert_permitted(&r)["disclosure_id"]
                .as_str()
                .unwrap()
                .to_owned(),
            Some(reason) => assert_refused(&r, reason),
        };
        answers.push((id, *refusal));
    }

    let store = gw.store().await;
    let ids: Vec<String> = answers.iter().map(|(id, _)| id.clone()).collect();
    assert_audited(&store, &ids).await;
    let records = assert_chain_verifies(&store).await;
    for (id, refusal) in &answers {
        let rec = records.iter().find(|r| &r.entry.id == id).unwrap();
        assert_eq!(
            rec.entry.kind,
            Some(gateway::audit::record::AuditKind::Disclosure)
        );
        let expected = match refusal {
            None => gateway::audit::record::Outcome::Permit,
            Some(_) => gateway::audit::record::Outcome::Refuse,
        };
        assert_eq!(rec.entry.decision, Some(expected), "{id}");
        assert_eq!(rec.entry.reason.as_deref(), *refusal, "{id}");
    }
    // The log holds pseudonyms and field names, never a BSN or a value.
    let dump = serde_json::to_string(&records).unwrap();
    for b in [&with_consent, &revoked, &expired, &without] {
        assert!(!dump.contains(b.as_str()), "the audit log holds no BSN");
    }
    for value in STORED_VALUES {
        assert!(!dump.contains(value), "the audit log holds no value");
    }
}
