//! End-to-end tests of the covenant lifecycle over real mutual TLS and bearer tokens: drafts,
//! party signatures (and the signatures that must be refused), suspension, resumption,
//! termination, amendments taking effect on the next request, expiry warnings, persistence
//! across a restart, and who may do any of it. Each test starts its own gateway.

mod common;

use std::time::Duration;

use chrono::{Days, Utc};
use common::*;
use devkit::client::ClientResponse;
use devkit::demo::{GORINCHEM, SDD, UWV};
use hyper::Method;
use jsonwebtoken::Algorithm;
use policy::{Covenant, DocumentFormat, Grant, LegalBasis, Party, PartyRole};
use serde_json::{json, Value};

const ADMIN: &str = "regio-admin-1";
const DRECHTSTEDEN: &str = "drechtsteden-max-ww";
const PILOT: &str = "werkfit-pilot";

// ── helpers ─────────────────────────────────────────────────────────────────────────────────

fn token(roles: &[&str]) -> String {
    devkit::demo::person_token(&certs_dir(), ADMIN, SDD, roles).expect("bearer token")
}

fn admin_token() -> String {
    token(&["covenant-admin"])
}

/// An administrator's request (bearer token, no client certificate).
async fn admin_call(
    gw: &Gateway,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> ClientResponse {
    let body = body.map(|b| serde_json::to_vec(b).expect("body serialises"));
    gw.anonymous_client()
        .send(method, path, bearer, body)
        .await
        .unwrap_or_else(|e| panic!("{path} answered: {e}"))
}

async fn admin_get(gw: &Gateway, path: &str) -> Value {
    let r = admin_call(gw, Method::GET, path, Some(&admin_token()), None).await;
    assert_eq!(r.status, 200, "GET {path}: {}", text(&r));
    r.json()
}

async fn create(gw: &Gateway, covenant: &Covenant) -> ClientResponse {
    let body = serde_json::to_value(covenant).expect("covenant serialises");
    admin_call(
        gw,
        Method::POST,
        "/v1/covenants",
        Some(&admin_token()),
        Some(&body),
    )
    .await
}

async fn post_signature(gw: &Gateway, id: &str, version: u32, jws: &str) -> ClientResponse {
    admin_call(
        gw,
        Method::POST,
        &format!("/v1/covenants/{id}/versions/{version}/signatures"),
        Some(&admin_token()),
        Some(&json!({ "jws": jws })),
    )
    .await
}

async fn act(gw: &Gateway, id: &str, what: &str) -> ClientResponse {
    admin_call(
        gw,
        Method::POST,
        &format!("/v1/covenants/{id}/{what}"),
        Some(&admin_token()),
        None,
    )
    .await
}

/// Who signs, with which key file under `certs-example/covenant-keys/`.
#[derive(Clone, Copy)]
struct Signer {
    file: &'static str,
    party: &'static str,
    kid: &'static str,
    alg: Algorithm,
}

const AS_UWV: Signer = Signer {
    file: "uwv",
    party: UWV,
    kid: "uwv-covenant-1",
    alg: Algorithm::ES256,
};
const AS_SDD: Signer = Signer {
    file: "sdd",
    party: SDD,
    kid: "sdd-covenant-1",
    alg: Algorithm::EdDSA,
};

fn sign(who: Signer, covenant: &Covenant) -> String {
    let key = gateway::keys::load_private(
        &certs_dir().join(format!("covenant-keys/{}.key.pem", who.file)),
        who.alg,
    )
    .expect("covenant key loads");
    gateway::covenant_sig::sign(
        covenant,
        &who.party.parse().expect("OIN"),
        who.kid,
        who.alg,
        &key,
    )
    .expect("signs")
}

/// Sign `covenant` as `who` and add the signature through the API; expects success.
async fn signed_by(gw: &Gateway, who: Signer, covenant: &Covenant) -> Value {
    let r = post_signature(
        gw,
        covenant.id.as_str(),
        covenant.version,
        &sign(who, covenant),
    )
    .await;
    assert!(
        r.status == 201 || r.status == 200,
        "signature accepted: {}",
        text(&r)
    );
    r.json()
}

fn drechtsteden_v1() -> Covenant {
    let text =
        std::fs::read_to_string(repo_root().join("schemas/examples/covenant-drechtsteden.toml"))
            .expect("example covenant");
    Covenant::parse(&text, DocumentFormat::Toml).expect("example covenant parses")
}

/// A small covenant between UWV and SDD for a purpose the Drechtsteden covenant does not grant.
fn pilot(valid_until_in_days: u64) -> Covenant {
    let today = Utc::now().date_naive();
    Covenant {
        id: PILOT.parse().unwrap(),
        version: 1,
        title: "Pilot werkfit".into(),
        region: "Drechtsteden".into(),
        parties: vec![
            Party {
                oin: UWV.parse().unwrap(),
                name: "UWV".into(),
                role: PartyRole::Source,
            },
            Party {
                oin: SDD.parse().unwrap(),
                name: "Sociale Dienst Drechtsteden".into(),
                role: PartyRole::Recipient,
            },
        ],
        valid_from: today - Days::new(1),
        valid_until: today + Days::new(valid_until_in_days),
        grants: vec![Grant {
            purpose: PILOT.parse().unwrap(),
            source: UWV.parse().unwrap(),
            recipients: vec![SDD.parse().unwrap()],
            fields: vec!["job_ready".parse().unwrap()],
            legal_basis: LegalBasis::PublicTask,
            basis_text: "Participatiewet art. 7 (pilot)".into(),
            consent_required: false,
            special_categories: false,
            retention_days: 30,
            processing_activity: None,
            roles: Vec::new(),
            delivery: Default::default(),
            norms: Default::default(),
        }],
    }
}

fn party_status(version: &Value, oin: &str) -> String {
    version["parties"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["oin"] == oin))
        .and_then(|p| p["signature"].as_str())
        .unwrap_or("absent")
        .to_owned()
}

fn intake_record() -> Value {
    json!({ "fields": {
        "ww_end_date": "2027-02-28",
        "adviser_contact": "J. de Vries, UWV Dordrecht"
    }})
}

/// Covenant-admin audit records, in order.
async fn admin_records(gw: &Gateway) -> Vec<gateway::audit::record::AuditRecord> {
    let store = gw.store().await;
    audit_records(&store)
        .await
        .into_iter()
        .filter(|r| r.entry.kind == Some(gateway::audit::record::AuditKind::CovenantAdmin))
        .collect()
}

// ── signatures ──────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn version_missing_one_party_signature_never_permits() {
    let gw = Gateway::start().await;
    let c = pilot(365);
    let r = create(&gw, &c).await;
    assert_eq!(r.status, 201, "draft created: {}", text(&r));
    let v = r.json();
    assert_eq!(v["state"], "draft");
    assert_eq!(v["hash"], c.canonical_hash().to_string());
    assert_eq!(v["awaiting_signatures"], json!([UWV, SDD]));

    let v = signed_by(&gw, AS_UWV, &c).await;
    assert_eq!(party_status(&v, UWV), "signed");
    assert_eq!(party_status(&v, SDD), "missing");
    assert_eq!(v["state"], "draft");
    assert_eq!(v["in_force"], false);

    // SDD is a party to the Drechtsteden covenant, but nothing in force grants this purpose.
    let bsn = bsn(1);
    let r = gw.disclose("sdd", &ask(&bsn, PILOT, &["job_ready"])).await;
    assert_refused(&r, "purpose-not-granted");

    let v = signed_by(&gw, AS_SDD, &c).await;
    assert_eq!(v["state"], "active");
    assert_eq!(v["in_force"], true);
    let r = gw.disclose("sdd", &ask(&bsn, PILOT, &["job_ready"])).await;
    let v = assert_permitted(&r);
    assert_eq!(v["basis"]["covenant"], c.reference().to_string());
}

#[tokio::test]
async fn altered_document_non_party_and_unregistered_key_signatures_are_refused() {
    let gw = Gateway::start().await;
    let c = pilot(365);
    assert_eq!(create(&gw, &c).await.status, 201);

    // UWV signs a document that differs from the stored version in one value.
    let mut altered = c.clone();
    altered.grants[0].retention_days = 3650;
    let r = post_signature(&gw, PILOT, 1, &sign(AS_UWV, &altered)).await;
    assert_problem(&r, 422, "signature-invalid");

    // Gorinchem is no party to this covenant (and has no registered covenant key).
    let gorinchem = Signer {
        file: "gorinchem",
        party: GORINCHEM,
        kid: "gorinchem-covenant-1",
        alg: Algorithm::ES256,
    };
    let r = post_signature(&gw, PILOT, 1, &sign(gorinchem, &c)).await;
    assert_problem(&r, 422, "not-a-party");

    // Gorinchem's key posing as UWV: under UWV's kid it does not verify; under its own kid the
    // key is not one of UWV's registered keys.
    let posing = Signer {
        party: UWV,
        kid: "uwv-covenant-1",
        ..gorinchem
    };
    let r = post_signature(&gw, PILOT, 1, &sign(posing, &c)).await;
    assert_problem(&r, 422, "signature-invalid");
    let posing = Signer {
        party: UWV,
        ..gorinchem
    };
    let r = post_signature(&gw, PILOT, 1, &sign(posing, &c)).await;
    assert_problem(&r, 422, "unknown-key");

    // A valid signature over another covenant is not one over this version.
    let r = post_signature(&gw, PILOT, 1, &sign(AS_UWV, &drechtsteden_v1())).await;
    assert_problem(&r, 422, "signature-invalid");
    let r = post_signature(&gw, PILOT, 1, "not-a-jws").await;
    assert_problem(&r, 400, "signature-malformed");
    let r = post_signature(&gw, PILOT, 9, &sign(AS_UWV, &c)).await;
    assert_problem(&r, 404, "not-found");

    let v = admin_get(&gw, "/v1/covenants/werkfit-pilot").await;
    let v1 = &v["versions"][0];
    assert_eq!(party_status(v1, UWV), "missing");
    assert_eq!(party_status(v1, SDD), "missing");
    assert_eq!(v["state"], "draft");

    // Refused signatures are audited too, naming the version and the reason.
    let records = admin_records(&gw).await;
    let refused: Vec<_> = records
        .iter()
        .filter(|r| r.entry.decision == Some(gateway::audit::record::Outcome::Refuse))
        .map(|r| r.entry.reason.clone().unwrap_or_default())
        .collect();
    for reason in [
        "sign:signature-invalid",
        "sign:not-a-party",
        "sign:unknown-key",
        "sign:signature-malformed",
    ] {
        assert!(
            refused.iter().any(|r| r == reason),
            "{reason} in {refused:?}"
        );
    }
    assert!(records
        .iter()
        .all(|r| r.entry.requester_person.as_deref() == Some(ADMIN)));
}

#[tokio::test]
async fn a_party_may_sign_again_and_its_signature_is_replaced() {
    let gw = Gateway::start().await;
    let c = pilot(365);
    assert_eq!(create(&gw, &c).await.status, 201);
    let r = post_signature(&gw, PILOT, 1, &sign(AS_UWV, &c)).await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let r = post_signature(&gw, PILOT, 1, &sign(AS_UWV, &c)).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(party_status(&r.json(), UWV), "signed");
}

// ── suspension, resumption, termination ─────────────────────────────────────────────────────

#[tokio::test]
async fn suspension_refuses_the_next_disclosure_and_resume_restores_it() {
    let gw = Gateway::start().await;
    let bsn = bsn(2);
    let r = gw
        .put_handover("uwv", "bijstand-intake", &bsn, &intake_record())
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let intake = ask(&bsn, "bijstand-intake", &["ww_end_date"]);
    assert_permitted(&gw.disclose("sdd", &intake).await);

    let r = act(&gw, DRECHTSTEDEN, "suspend").await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["state"], "suspended");
    assert_eq!(r.json()["versions"][0]["admin_state"], "suspended");
    assert_refused(&gw.disclose("sdd", &intake).await, "no-active-covenant");
    assert_problem(
        &act(&gw, DRECHTSTEDEN, "suspend").await,
        409,
        "invalid-transition",
    );

    let r = act(&gw, DRECHTSTEDEN, "resume").await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["state"], "active");
    let v = assert_permitted(&gw.disclose("sdd", &intake).await);
    assert_eq!(v["released"]["ww_end_date"], "2027-02-28");
    assert_problem(
        &act(&gw, DRECHTSTEDEN, "resume").await,
        409,
        "invalid-transition",
    );

    // Each act is an audit record naming the administrator, the version and the act.
    let v1 = drechtsteden_v1().reference().to_string();
    let acts: Vec<(String, String, String, String)> = admin_records(&gw)
        .await
        .into_iter()
        .filter(|r| r.entry.decision == Some(gateway::audit::record::Outcome::Permit))
        .map(|r| {
            (
                r.entry.requester_oin.unwrap_or_default(),
                r.entry.requester_person.unwrap_or_default(),
                r.entry.covenant.unwrap_or_default(),
                r.entry.reason.unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        acts,
        vec![
            (SDD.into(), ADMIN.into(), v1.clone(), "suspend".into()),
            (SDD.into(), ADMIN.into(), v1, "resume".into()),
        ]
    );
}

#[tokio::test]
async fn termination_is_final() {
    let gw = Gateway::start().await;
    let bsn = bsn(3);
    let intake = ask(&bsn, "bijstand-intake", &["ww_end_date"]);
    let r = act(&gw, DRECHTSTEDEN, "terminate").await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["state"], "terminated");
    assert_refused(&gw.disclose("sdd", &intake).await, "no-active-covenant");

    assert_problem(
        &act(&gw, DRECHTSTEDEN, "resume").await,
        409,
        "covenant-terminated",
    );
    assert_problem(
        &act(&gw, DRECHTSTEDEN, "suspend").await,
        409,
        "covenant-terminated",
    );
    assert_problem(
        &act(&gw, DRECHTSTEDEN, "terminate").await,
        409,
        "covenant-terminated",
    );
    let mut v2 = drechtsteden_v1();
    v2.version = 2;
    assert_problem(&create(&gw, &v2).await, 409, "covenant-terminated");
    let v1 = drechtsteden_v1();
    assert_problem(
        &post_signature(&gw, DRECHTSTEDEN, 1, &sign(AS_UWV, &v1)).await,
        409,
        "covenant-terminated",
    );
    assert_refused(&gw.disclose("sdd", &intake).await, "no-active-covenant");
}

// ── amendments ──────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn amendment_removing_a_field_withholds_it_once_signed_and_decisions_name_each_hash() {
    let gw = Gateway::start().await;
    let bsn = bsn(4);
    let r = gw
        .put_handover("uwv", "bijstand-intake", &bsn, &intake_record())
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let both = ask(&bsn, "bijstand-intake", &["ww_end_date", "adviser_contact"]);
    let v1 = drechtsteden_v1();
    let mut v2 = v1.clone();
    v2.version = 2;
    v2.grants[1]
        .fields
        .retain(|f| f.as_str() != "adviser_contact");

    let before = assert_permitted(&gw.disclose("sdd", &both).await);
    assert_eq!(
        before["basis"]["covenant_hash"],
        v1.canonical_hash().to_string()
    );
    assert_eq!(before["basis"]["covenant_version"], 1);
    assert!(before["released"].get("adviser_contact").is_some());

    let r = create(&gw, &v2).await;
    assert_eq!(r.status, 201, "amendment drafted: {}", text(&r));
    assert_eq!(r.json()["state"], "draft");
    // A draft, and a version signed by only one party, changes nothing.
    let draft = assert_permitted(&gw.disclose("sdd", &both).await);
    assert_eq!(draft["basis"]["covenant"], v1.reference().to_string());
    signed_by(&gw, AS_UWV, &v2).await;
    let half = assert_permitted(&gw.disclose("sdd", &both).await);
    assert_eq!(half["basis"]["covenant"], v1.reference().to_string());
    assert!(half["released"].get("adviser_contact").is_some());

    signed_by(&gw, AS_SDD, &v2).await;
    let after = assert_permitted(&gw.disclose("sdd", &both).await);
    assert_eq!(after["basis"]["covenant"], v2.reference().to_string());
    assert_eq!(
        after["basis"]["covenant_hash"],
        v2.canonical_hash().to_string()
    );
    assert_eq!(after["released"], json!({ "ww_end_date": "2027-02-28" }));
    assert_eq!(
        after["withheld"],
        json!([{ "field": "adviser_contact", "reason": "field-not-granted" }])
    );

    // Older versions stay readable; the list and the covenant say which is in force.
    let v = admin_get(&gw, "/v1/covenants/drechtsteden-max-ww").await;
    assert_eq!(v["in_force"], v2.reference().to_string());
    assert_eq!(v["latest_version"], 2);
    assert_eq!(v["versions"][0]["in_force"], false);
    assert_eq!(v["versions"][1]["in_force"], true);
    assert_eq!(v["versions"][0]["hash"], v1.canonical_hash().to_string());
    let one = admin_get(&gw, "/v1/covenants/drechtsteden-max-ww/versions/1").await;
    assert_eq!(
        one["document"]["grants"][1]["fields"],
        json!(["ww_end_date", "adviser_contact"])
    );

    // The audit records of the disclosures name v1's and v2's hash.
    let store = gw.store().await;
    let named: Vec<String> = audit_records(&store)
        .await
        .into_iter()
        .filter(|r| r.entry.kind == Some(gateway::audit::record::AuditKind::Disclosure))
        .filter_map(|r| r.entry.covenant)
        .collect();
    assert_eq!(
        named,
        vec![
            v1.reference().to_string(),
            v1.reference().to_string(),
            v1.reference().to_string(),
            v2.reference().to_string()
        ]
    );
}

#[tokio::test]
async fn versions_must_follow_the_latest_and_documents_must_be_valid() {
    let gw = Gateway::start().await;
    let mut c = drechtsteden_v1();
    assert_problem(&create(&gw, &c).await, 409, "version-conflict");
    c.version = 3;
    assert_problem(&create(&gw, &c).await, 409, "version-conflict");
    let mut fresh = pilot(365);
    fresh.version = 2;
    assert_problem(&create(&gw, &fresh).await, 409, "version-conflict");

    let mut bad = pilot(365);
    bad.grants[0].fields.push("shoe_size".parse().unwrap());
    let v = assert_problem(&create(&gw, &bad).await, 422, "invalid-covenant");
    assert_eq!(v["problems"][0]["path"], "grants[0].fields[1]");

    let r = admin_call(
        &gw,
        Method::POST,
        "/v1/covenants",
        Some(&admin_token()),
        Some(&json!({ "id": PILOT, "version": 1 })),
    )
    .await;
    assert_problem(&r, 422, "invalid-covenant");
    let r = admin_call(
        &gw,
        Method::GET,
        "/v1/covenants/nope",
        Some(&admin_token()),
        None,
    )
    .await;
    assert_problem(&r, 404, "not-found");
    let r = admin_call(
        &gw,
        Method::POST,
        "/v1/covenants/nope/suspend",
        Some(&admin_token()),
        None,
    )
    .await;
    assert_problem(&r, 404, "not-found");
}

// ── who may ─────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn non_admin_token_is_forbidden_and_no_token_is_unauthorized() {
    let gw = Gateway::start().await;
    let officer = token(&["privacy-officer", "operator"]);
    let body = serde_json::to_value(pilot(365)).unwrap();
    let sig = json!({ "jws": sign(AS_UWV, &drechtsteden_v1()) });
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/v1/covenants".into(), None),
        (Method::GET, format!("/v1/covenants/{DRECHTSTEDEN}"), None),
        (Method::POST, "/v1/covenants".into(), Some(body)),
        (
            Method::POST,
            format!("/v1/covenants/{DRECHTSTEDEN}/versions/1/signatures"),
            Some(sig),
        ),
        (
            Method::POST,
            format!("/v1/covenants/{DRECHTSTEDEN}/suspend"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/covenants/{DRECHTSTEDEN}/resume"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/covenants/{DRECHTSTEDEN}/terminate"),
            None,
        ),
    ];
    for (method, path, body) in &calls {
        let r = admin_call(&gw, method.clone(), path, None, body.as_ref()).await;
        assert_problem(&r, 401, "unauthorized");
        let r = admin_call(
            &gw,
            method.clone(),
            path,
            Some("not.a.token"),
            body.as_ref(),
        )
        .await;
        assert_problem(&r, 401, "unauthorized");
        let r = admin_call(&gw, method.clone(), path, Some(&officer), body.as_ref()).await;
        assert_problem(&r, 403, "forbidden");
    }
    // Nothing changed: the covenant is still in force, and nothing was audited as an act.
    let bsn = bsn(5);
    assert_permitted(
        &gw.disclose("sdd", &ask(&bsn, "bijstand-intake", &["ww_end_date"]))
            .await,
    );
    assert!(admin_records(&gw).await.is_empty());
}

// ── expiry warnings and persistence ─────────────────────────────────────────────────────────

#[tokio::test]
async fn covenant_expiring_within_the_window_is_listed_and_on_metrics() {
    let gw = Gateway::start().await;
    let c = pilot(30);
    assert_eq!(create(&gw, &c).await.status, 201);
    signed_by(&gw, AS_UWV, &c).await;
    signed_by(&gw, AS_SDD, &c).await;

    let list = admin_get(&gw, "/v1/covenants").await;
    assert_eq!(list["expiry_warning_days"], 60);
    let find = |id: &str| {
        list["covenants"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["id"] == id))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let p = find(PILOT);
    assert_eq!(p["state"], "active");
    assert_eq!(p["expires_within_days"], 30);
    assert_eq!(p["in_force"], c.reference().to_string());
    let d = find(DRECHTSTEDEN);
    assert_eq!(d["state"], "active");
    assert_eq!(d["expires_within_days"], Value::Null);
    assert_eq!(d["awaiting_signatures"], json!([]));

    let r = gw
        .anonymous_client()
        .get("/metrics")
        .await
        .expect("metrics answered");
    assert_eq!(r.status, 200);
    let metrics = text(&r);
    assert!(
        metrics.contains(
            "poortwachter_covenant_expiring{covenant=\"werkfit-pilot\",version=\"1\"} 30"
        ),
        "{metrics}"
    );
    assert!(
        !metrics.contains("poortwachter_covenant_expiring{covenant=\"drechtsteden-max-ww\""),
        "{metrics}"
    );
    assert!(metrics.contains("poortwachter_covenant_expiry_warning_days 60"));
}

#[tokio::test]
async fn lifecycle_state_survives_a_restart() {
    let gw = Gateway::start().await;
    let c = pilot(365);
    assert_eq!(create(&gw, &c).await.status, 201);
    signed_by(&gw, AS_UWV, &c).await;
    assert_eq!(act(&gw, DRECHTSTEDEN, "suspend").await.status, 200);

    let Gateway {
        data,
        server,
        writer,
        ..
    } = gw;
    server.shutdown(Duration::from_secs(5)).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;

    // Same data directory, same database; the configuration is written again (and its covenant
    // is already in the database, so it is not imported twice or reopened).
    let config_path = write_demo_config(data.path(), "127.0.0.1:0");
    let config = gateway::config::Config::load(&config_path).expect("configuration loads");
    let (server, writer) = gateway::cli::serve::start(config)
        .await
        .expect("gateway restarts");
    let gw = Gateway {
        port: server.addr.port(),
        certs: certs_dir(),
        data,
        config_path,
        server,
        writer,
    };
    let v = admin_get(&gw, "/v1/covenants/drechtsteden-max-ww").await;
    assert_eq!(v["state"], "suspended");
    assert_eq!(party_status(&v["versions"][0], UWV), "signed");
    let p = admin_get(&gw, "/v1/covenants/werkfit-pilot").await;
    assert_eq!(p["state"], "draft");
    assert_eq!(party_status(&p["versions"][0], UWV), "signed");
    assert_eq!(party_status(&p["versions"][0], SDD), "missing");
    let bsn = bsn(6);
    assert_refused(
        &gw.disclose("sdd", &ask(&bsn, "bijstand-intake", &["ww_end_date"]))
            .await,
        "no-active-covenant",
    );
}
