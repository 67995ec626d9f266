//! End-to-end tests of the privacy officer's review endpoints over real mutual TLS with bearer
//! tokens: organisation scope (both ways), filters, cursor pages while the log grows, the
//! data-subject report (JSON and HTML), CSV and JSON Lines exports, meta-audit of every read,
//! and the 401/403 answers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use devkit::client::{ClientResponse, MtlsClient};
use devkit::demo::{self, DemoPaths, GORINCHEM, SDD, UWV};
use gateway::audit::record::{AuditRecord, GENESIS};
use gateway::config::Config;
use gateway::crypto::Pseudonymizer;
use gateway::server::RunningServer;
use hyper::Method;
use serde_json::{json, Value};

/// Has consent for job mediation, and handover data for both purposes.
const BSN_A: &str = "111222333";
/// No consent; handover data for Bijstand intake only.
const BSN_B: &str = "123456782";
/// Nothing held: a permit that releases nothing.
const BSN_C: &str = "999999990";

/// A disclosure the test made and saw permitted with released fields.
#[derive(Debug, Clone)]
struct Disclosed {
    id: String,
    purpose: String,
    fields: BTreeSet<String>,
    consent: Option<String>,
}

struct World {
    data: tempfile::TempDir,
    config_path: PathBuf,
    server: Option<(RunningServer, tokio::task::JoinHandle<()>)>,
    certs: PathBuf,
    port: u16,
    pseudonymizer: Pseudonymizer,
    sdd: MtlsClient,
    gorinchem: MtlsClient,
    /// Permits with released fields, per BSN.
    disclosed: BTreeMap<&'static str, Vec<Disclosed>>,
    /// Ids of every other disclosure decision (refusals, the empty permit).
    other_ids: Vec<String>,
    consent_a: String,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

fn ask(bsn: &str, purpose: &str, fields: &[&str]) -> Value {
    json!({
        "subject": { "bsn": bsn },
        "purpose": purpose,
        "fields": fields
    })
}

impl World {
    /// Start a gateway and make traffic: a consent, handovers, permits and refusals about
    /// two people (and a permit that releases nothing about a third).
    async fn start() -> World {
        let data = tempfile::tempdir().expect("temporary directory");
        let root = repo_root();
        let paths = DemoPaths::in_repo(&root, data.path());
        let config_path = demo::write_config(&paths, "127.0.0.1:0").expect("config written");
        // Checkpoints every few records, so that exports carry some.
        let toml = std::fs::read_to_string(&config_path).expect("config");
        assert!(
            toml.contains("[audit]\n"),
            "the demo configuration has an [audit] section"
        );
        let toml = toml.replace("[audit]\n", "[audit]\ncheckpoint_every_records = 4\n");
        std::fs::write(&config_path, toml).expect("config");
        let config = Config::load(&config_path).expect("config loads");
        let pseudonymizer = Pseudonymizer::new(
            &config
                .secret("secrets.pseudonym_key", 32)
                .expect("pseudonym key"),
        );
        let (server, writer) = gateway::cli::serve::start(config)
            .await
            .expect("gateway starts");
        let port = server.addr.port();
        let certs = root.join("certs-example");
        let client = |name| demo::client(&certs, name, port).expect("client");
        let uwv = client("uwv");
        let mut world = World {
            sdd: client("sdd"),
            gorinchem: client("gorinchem"),
            data,
            config_path,
            server: Some((server, writer)),
            certs: certs.clone(),
            port,
            pseudonymizer,
            disclosed: BTreeMap::new(),
            other_ids: Vec::new(),
            consent_a: gateway::crypto::random_id("consent"),
        };

        let now = chrono::Utc::now().timestamp();
        let claims = demo::demo_consent(&world.consent_a, BSN_A, now).expect("claims");
        let token = demo::sign_as_uwv(&certs, &claims).expect("signed");
        let r = uwv
            .post_json("/v1/consents", &json!({ "token": token }))
            .await
            .expect("answer");
        assert_eq!(r.status, 201, "consent: {}", text(&r));

        let intake = json!({ "fields": {
            "ww_end_date": "2027-02-28",
            "adviser_contact": "J. de Vries, UWV Dordrecht"
        }});
        for (purpose, bsn, record) in [
            ("job-mediation", BSN_A, demo::demo_handover()),
            ("bijstand-intake", BSN_A, intake.clone()),
            ("bijstand-intake", BSN_B, intake),
        ] {
            let r = uwv
                .post_json(
                    "/v1/handovers",
                    &demo::handover_request(purpose, bsn, &record),
                )
                .await
                .expect("answer");
            assert_eq!(r.status, 201, "handover {purpose}: {}", text(&r));
        }

        world
            .disclose_permit(
                BSN_A,
                "job-mediation",
                &["available_hours_per_week", "own_transport", "cv"],
            )
            .await;
        world
            .disclose_permit(
                BSN_A,
                "bijstand-intake",
                &["ww_end_date", "adviser_contact"],
            )
            .await;
        world
            .disclose_permit(
                BSN_B,
                "bijstand-intake",
                &["ww_end_date", "adviser_contact"],
            )
            .await;
        let refused = world
            .disclose("sdd", BSN_B, "job-mediation", &["own_transport"])
            .await;
        assert_eq!(refused.json()["reason"], "consent-required");
        let empty = world
            .disclose(
                "sdd",
                BSN_C,
                "bijstand-intake",
                &["ww_end_date", "adviser_contact"],
            )
            .await;
        assert_eq!(empty.status, 200);
        assert_eq!(empty.json()["record"], "no-record");
        for (bsn, purpose) in [(BSN_A, "job-mediation"), (BSN_B, "bijstand-intake")] {
            let r = world
                .disclose("gorinchem", bsn, purpose, &["ww_end_date"])
                .await;
            assert_eq!(r.status, 403, "{}", text(&r));
        }
        world
    }

    /// A disclosure request; its id goes to `other_ids` (callers move permits elsewhere).
    async fn disclose(
        &mut self,
        who: &str,
        bsn: &str,
        purpose: &str,
        fields: &[&str],
    ) -> ClientResponse {
        let client = if who == "sdd" {
            &self.sdd
        } else {
            &self.gorinchem
        };
        let r = client
            .post_json("/v1/disclosures", &ask(bsn, purpose, fields))
            .await
            .expect("answer");
        let id = r.json()["disclosure_id"]
            .as_str()
            .expect("every decision has an id")
            .to_owned();
        self.other_ids.push(id);
        r
    }

    /// SDD asks and is granted at least one field.
    async fn disclose_permit(
        &mut self,
        bsn: &'static str,
        purpose: &str,
        fields: &[&str],
    ) -> Disclosed {
        let r = self.disclose("sdd", bsn, purpose, fields).await;
        assert_eq!(r.status, 200, "{}", text(&r));
        let v = r.json();
        let released: BTreeSet<String> = v["released"]
            .as_object()
            .expect("released")
            .keys()
            .cloned()
            .collect();
        assert!(!released.is_empty());
        let d = Disclosed {
            id: self.other_ids.pop().expect("id"),
            purpose: purpose.to_owned(),
            fields: released,
            consent: v["basis"]["consent"].as_str().map(ToOwned::to_owned),
        };
        self.disclosed.entry(bsn).or_default().push(d.clone());
        d
    }

    /// Stop the gateway and let its audit writer finish (the database is then offline).
    async fn stop(&mut self) {
        if let Some((server, writer)) = self.server.take() {
            server.shutdown(std::time::Duration::from_secs(5)).await;
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), writer).await;
        }
    }

    fn token(&self, sub: &str, org: &str, roles: &[&str]) -> String {
        demo::person_token(&self.certs, sub, org, roles).expect("token")
    }

    fn officer(&self, org: &str) -> String {
        self.token(&format!("fg-{org}"), org, &["privacy-officer"])
    }

    fn operator(&self) -> String {
        self.token("ops-1", SDD, &["privacy-officer", "operator"])
    }

    fn pseudonym(&self, bsn: &str) -> String {
        self.pseudonymizer
            .pseudonym(&bsn.parse().expect("valid BSN"))
    }

    async fn get(&self, path: &str, token: Option<&str>) -> ClientResponse {
        self.sdd
            .send(Method::GET, path, token, None)
            .await
            .expect("answer")
    }

    async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> ClientResponse {
        let body = serde_json::to_vec(body).expect("json");
        self.sdd
            .send(Method::POST, path, token, Some(body))
            .await
            .expect("answer")
    }

    /// The data-subject report on `bsn` (`POST /v1/audit/subject-reports`), with the body
    /// members `extra` (`format`, `lang`) besides the subject.
    async fn report(&self, bsn: &str, extra: Value, token: &str) -> ClientResponse {
        let mut body = json!({ "subject": { "bsn": bsn } });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.post("/v1/audit/subject-reports", &body, Some(token))
            .await
    }

    /// Every page of `POST /v1/audit/records/search` with the filter `filter` (a JSON object).
    async fn search_all(&self, token: &str, filter: Value) -> Vec<AuditRecord> {
        let mut out = Vec::new();
        let mut body = filter;
        body["limit"] = json!(1000);
        loop {
            let r = self
                .post("/v1/audit/records/search", &body, Some(token))
                .await;
            assert_eq!(r.status, 200, "{body}: {}", text(&r));
            let v = r.json();
            out.extend(records(&v));
            match v["next_cursor"].as_str() {
                Some(c) => body["cursor"] = json!(c),
                None => return out,
            }
        }
    }

    /// Every page of `/v1/audit/records?{query}`.
    async fn list_all(&self, token: &str, query: &str) -> Vec<AuditRecord> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/audit/records?limit=1000&{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let r = self.get(&path, Some(token)).await;
            assert_eq!(r.status, 200, "{path}: {}", text(&r));
            let v = r.json();
            out.extend(records(&v));
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }
}

fn text(r: &ClientResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn records(page: &Value) -> Vec<AuditRecord> {
    serde_json::from_value(page["records"].clone()).expect("records parse as AuditRecord")
}

fn party(r: &AuditRecord, org: &str) -> bool {
    r.entry.requester_oin.as_deref() == Some(org) || r.entry.source_oin.as_deref() == Some(org)
}

fn seqs(rs: &[AuditRecord]) -> Vec<i64> {
    rs.iter().map(|r| r.seq).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_see_only_their_own_organisation_both_ways_and_operator_sees_all() {
    let w = World::start().await;
    let sdd = w.list_all(&w.officer(SDD), "").await;
    let gor = w.list_all(&w.officer(GORINCHEM), "").await;
    let op = w.list_all(&w.operator(), "").await;

    assert!(sdd.iter().all(|r| party(r, SDD)));
    assert!(
        !sdd.iter().any(|r| party(r, GORINCHEM)),
        "SDD sees no Gorinchem record"
    );
    assert!(gor.iter().all(|r| party(r, GORINCHEM)));
    assert!(
        !gor.iter().any(|r| party(r, SDD)),
        "Gorinchem sees no SDD record"
    );
    let gor_refusals = gor
        .iter()
        .filter(|r| r.entry.kind.map(|k| k.as_str()) == Some("disclosure"))
        .count();
    assert_eq!(gor_refusals, 2, "Gorinchem sees its own two refusals");
    assert!(sdd.iter().any(|r| r.entry.id == w.disclosed[BSN_A][0].id));

    // Exactly the records the rule allows: compare with the operator's view of the same prefix.
    for (mine, org) in [(&sdd, SDD), (&gor, GORINCHEM)] {
        let last = mine.last().expect("not empty").seq;
        let expected: Vec<i64> = op
            .iter()
            .filter(|r| r.seq <= last && party(r, org))
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs(mine), expected, "scope of {org}");
    }
    // The operator sees every record, UWV's own included, as one unbroken chain.
    assert!(op.iter().any(|r| party(r, UWV) && !party(r, SDD)));
    assert!(op.iter().any(|r| party(r, GORINCHEM)));
    let mut prev = GENESIS;
    for (i, r) in op.iter().enumerate() {
        assert_eq!(r.seq, i as i64 + 1);
        assert_eq!(r.prev_hash, prev);
        assert!(r.hash_is_valid());
        prev = r.hash;
    }
    // Naming the other organisation as counterpart does not widen the scope.
    let crossed = w
        .list_all(&w.officer(SDD), &format!("org={GORINCHEM}"))
        .await;
    assert!(crossed.is_empty(), "{crossed:?}");
    let uwv_as_counterpart = w.list_all(&w.officer(SDD), &format!("org={UWV}")).await;
    assert!(!uwv_as_counterpart.is_empty());
    assert!(uwv_as_counterpart
        .iter()
        .all(|r| party(r, SDD) && party(r, UWV)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_by_purpose_decision_reason_subject_kind_and_time() {
    let w = World::start().await;
    let op = w.operator();
    let officer = w.officer(SDD);

    let intake = w.list_all(&officer, "purpose=bijstand-intake").await;
    assert_eq!(intake.len(), 3, "A, B and C at intake by SDD");
    assert!(intake
        .iter()
        .all(|r| r.entry.purpose.as_deref() == Some("bijstand-intake")));

    let refused = w
        .list_all(&officer, "decision=refuse&reason=consent-required")
        .await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].entry.subject_pseudonym, Some(w.pseudonym(BSN_B)));

    let permits = w.list_all(&op, "kind=disclosure&decision=permit").await;
    assert_eq!(permits.len(), 4, "three with data, one without");

    let about_a = w
        .search_all(
            &op,
            json!({ "subject": { "bsn": BSN_A }, "kind": "disclosure" }),
        )
        .await;
    let a = w.pseudonym(BSN_A);
    assert_eq!(
        about_a.len(),
        3,
        "two SDD permits and one Gorinchem refusal"
    );
    assert!(about_a
        .iter()
        .all(|r| r.entry.subject_pseudonym.as_deref() == Some(a.as_str())));
    let a_as_sdd = w
        .search_all(
            &officer,
            json!({ "subject": { "bsn": BSN_A }, "kind": "disclosure" }),
        )
        .await;
    let ids: BTreeSet<_> = a_as_sdd.iter().map(|r| r.entry.id.clone()).collect();
    let expected: BTreeSet<_> = w.disclosed[BSN_A].iter().map(|d| d.id.clone()).collect();
    assert_eq!(ids, expected);

    // Time: `from` is inclusive, `to` exclusive; together they split the log.
    let all = w.list_all(&op, "").await;
    let last = all.last().expect("records").seq;
    let middle = all[all.len() / 2].entry.time.clone();
    let after = w.list_all(&op, &format!("from={middle}")).await;
    let before = w.list_all(&op, &format!("to={middle}")).await;
    assert!(after.iter().all(|r| r.entry.time >= middle));
    assert!(before.iter().all(|r| r.entry.time < middle));
    let mut joined: Vec<i64> = after
        .iter()
        .chain(&before)
        .map(|r| r.seq)
        .filter(|s| *s <= last)
        .collect();
    joined.sort_unstable();
    assert_eq!(joined, seqs(&all));
    let empty = w
        .get(
            &format!("/v1/audit/records?from={middle}&to={middle}"),
            Some(&op),
        )
        .await;
    assert_eq!(empty.status, 400, "an empty window is a mistake");

    // Bad parameters: 400 naming the parameter; a BSN is never echoed, and a subject is never
    // a query parameter.
    for (query, reason) in [
        ("decision=maybe", "malformed-request"),
        ("from=yesterday", "malformed-request"),
        ("limit=0", "malformed-request"),
        ("colour=red", "malformed-request"),
        ("subject=111222333", "malformed-request"),
        ("bsn=111222333", "malformed-request"),
    ] {
        let r = w
            .get(&format!("/v1/audit/records?{query}"), Some(&officer))
            .await;
        assert_eq!(r.status, 400, "{query}");
        assert_eq!(r.json()["reason"], reason, "{query}");
        assert!(!text(&r).contains("111222333"));
    }
    for (body, reason) in [
        (json!({ "subject": { "bsn": "123456789" } }), "invalid-bsn"),
        (json!({ "subject": "111222333" }), "malformed-request"),
        (json!({ "decision": "maybe" }), "malformed-request"),
        (json!({ "format": "csv" }), "malformed-request"),
        (json!({ "colour": "red" }), "malformed-request"),
    ] {
        let r = w
            .post("/v1/audit/records/search", &body, Some(&officer))
            .await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.json()["reason"], reason, "{body}");
        assert!(!text(&r).contains("123456789") && !text(&r).contains("111222333"));
    }
    // A POST takes its parameters in the body only.
    let r = w
        .post(
            "/v1/audit/records/search?kind=disclosure",
            &json!({}),
            Some(&officer),
        )
        .await;
    assert_eq!(r.json()["reason"], "malformed-request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_is_stable_while_records_are_appended() {
    let mut w = World::start().await;
    let officer = w.officer(SDD);
    let mut paged: Vec<AuditRecord> = Vec::new();
    let mut appended = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/v1/audit/records?limit=2".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = w.get(&path, Some(&officer)).await;
        assert_eq!(r.status, 200, "{}", text(&r));
        let v = r.json();
        paged.extend(records(&v));
        pages += 1;
        // The log grows between pages: a disclosure SDD will see, one it will not.
        if pages <= 4 {
            let d = w
                .disclose_permit(
                    BSN_B,
                    "bijstand-intake",
                    &["ww_end_date", "adviser_contact"],
                )
                .await;
            appended.push(d.id);
            w.disclose("gorinchem", BSN_A, "job-mediation", &["own_transport"])
                .await;
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 100, "pagination ends");
    }
    let s = seqs(&paged);
    assert!(
        s.windows(2).all(|p| p[0] < p[1]),
        "no duplicates, in order: {s:?}"
    );
    let ids: BTreeSet<_> = paged.iter().map(|r| r.entry.id.clone()).collect();
    for id in &appended {
        assert!(ids.contains(id), "appended record {id} was paged");
    }
    let last = *s.last().expect("records");
    let everything = w.list_all(&officer, "").await;
    let expected: Vec<i64> = everything
        .iter()
        .map(|r| r.seq)
        .filter(|seq| *seq <= last)
        .collect();
    assert_eq!(s, expected, "no gaps");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_report_lists_exactly_the_disclosures_about_that_person() {
    let w = World::start().await;
    let officer = w.officer(SDD);
    let everyone_else: Vec<String> = w
        .disclosed
        .iter()
        .filter(|(bsn, _)| **bsn != BSN_A)
        .flat_map(|(_, ds)| ds.iter().map(|d| d.id.clone()))
        .chain(w.other_ids.iter().cloned())
        .collect();

    let r = w.report(BSN_A, json!({}), &officer).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.headers["cache-control"], "no-store");
    let body = text(&r);
    assert!(
        !body.contains(BSN_A),
        "the report shows the BSN masked only"
    );
    let v = r.json();
    assert_eq!(v["subject"], "*******33");
    let got = v["disclosures"].as_array().expect("disclosures");
    let expected = &w.disclosed[BSN_A];
    assert_eq!(got.len(), expected.len(), "{v:#}");
    for (g, e) in got.iter().zip(expected) {
        assert_eq!(g["disclosure_id"], e.id.as_str());
        assert_eq!(g["purpose"], e.purpose.as_str());
        assert_eq!(g["recipient"]["oin"], SDD);
        assert_eq!(g["recipient"]["name"], "Sociale Dienst Drechtsteden");
        assert_eq!(g["source"]["oin"], UWV);
        assert_eq!(g["source"]["name"], "UWV");
        let fields: BTreeSet<String> = g["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| f["name"].as_str().expect("name").to_owned())
            .collect();
        assert_eq!(fields, e.fields);
        assert_eq!(g["consent_id"].as_str(), e.consent.as_deref());
        assert!(g["time"].as_str().is_some() && g["legal_basis"].as_str().is_some());
    }
    assert_eq!(got[0]["legal_basis"], "consent");
    assert_eq!(got[0]["consent_id"], w.consent_a.as_str());
    assert_eq!(got[1]["legal_basis"], "legal-obligation");
    for id in &everyone_else {
        assert!(
            !body.contains(id.as_str()),
            "nothing about anyone else: {id}"
        );
    }

    let r = w
        .report(BSN_A, json!({ "format": "html", "lang": "en" }), &officer)
        .await;
    assert_eq!(r.status, 200);
    assert!(r
        .content_type
        .as_deref()
        .unwrap_or("")
        .starts_with("text/html"));
    assert!(r.headers.contains_key("content-security-policy"));
    let html = text(&r);
    assert!(html.contains("Sociale Dienst Drechtsteden") && html.contains(SDD));
    for d in expected {
        assert!(html.contains(&d.id));
    }
    for id in &everyone_else {
        assert!(!html.contains(id.as_str()));
    }
    assert!(!html.contains(BSN_A) && !html.contains("<script"));
    assert!(
        html.contains("(Dutch time, CE"),
        "times in Dutch local time"
    );
    let nl = text(&w.report(BSN_A, json!({ "format": "html" }), &officer).await);
    assert!(nl.contains("lang=\"nl\"") && nl.contains("Uw toestemming"));
    assert!(nl.contains("(Nederlandse tijd, CE") && !nl.contains("UTC"));

    // B: one disclosure; C: a permit that released nothing is no disclosure.
    let b = w.report(BSN_B, json!({}), &officer).await.json();
    assert_eq!(b["disclosures"].as_array().expect("list").len(), 1);
    assert_eq!(
        b["disclosures"][0]["disclosure_id"],
        w.disclosed[BSN_B][0].id.as_str()
    );
    let c = w.report(BSN_C, json!({}), &officer).await.json();
    assert_eq!(c["disclosures"], json!([]));
    // Gorinchem took part in no disclosure about A; UWV (the source) sees them all.
    let gor = w
        .report(BSN_A, json!({}), &w.officer(GORINCHEM))
        .await
        .json();
    assert_eq!(gor["disclosures"], json!([]));
    assert_eq!(gor["scope"]["organisation"]["oin"], GORINCHEM);
    let uwv = w.report(BSN_A, json!({}), &w.officer(UWV)).await.json();
    assert_eq!(uwv["disclosures"].as_array().expect("list").len(), 2);
    let bad = w.report("123456789", json!({}), &officer).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["reason"], "invalid-bsn");
    assert!(!text(&bad).contains("123456789"));
    for extra in [
        json!({ "format": "pdf" }),
        json!({ "lang": "de" }),
        json!({ "bsn": BSN_A }),
    ] {
        let r = w.report(BSN_A, extra.clone(), &officer).await;
        assert_eq!(r.json()["reason"], "malformed-request", "{extra}");
        assert!(!text(&r).contains(BSN_A));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_every_visible_record_and_jsonl_round_trips_with_valid_hashes() {
    let w = World::start().await;
    let r = w
        .get("/v1/audit/export?format=jsonl", Some(&w.operator()))
        .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.content_type.as_deref(), Some("application/jsonl"));
    let through: i64 = r.headers["x-audit-through-seq"]
        .to_str()
        .expect("header")
        .parse()
        .expect("number");
    let body = text(&r);
    assert!(!body.contains(BSN_A) && !body.contains(BSN_B));
    let mut all = Vec::new();
    let mut checkpoints = Vec::new();
    let mut lines = body.lines();
    let meta: Value = serde_json::from_str(lines.next().expect("meta line")).expect("JSON");
    assert_eq!(meta["meta"]["through_seq"], through);
    assert_eq!(meta["meta"]["complete"], true);
    for line in lines {
        let v: Value = serde_json::from_str(line).expect("each line is JSON");
        if let Some(cp) = v.get("checkpoint") {
            checkpoints.push(cp["seq"].as_i64().expect("seq"));
            continue;
        }
        let rec: AuditRecord = serde_json::from_value(v).expect("line is an AuditRecord");
        assert!(rec.hash_is_valid(), "record {}", rec.seq);
        all.push(rec);
    }
    assert_eq!(seqs(&all), (1..=through).collect::<Vec<_>>());
    assert!(
        checkpoints.len() as i64 >= through / 4 - 1,
        "{checkpoints:?} through {through}"
    );
    assert!(checkpoints.iter().all(|s| *s <= through));
    // Export → offline verification round-trips: every link, every checkpoint signature.
    let key = gateway::audit::checkpoint::CheckpointPublicKey::load(
        &w.certs.join("audit/checkpoint-ed25519.pub.pem"),
    )
    .expect("checkpoint key");
    let report = gateway::audit::verify_sources::verify_export(
        std::io::Cursor::new(body.as_bytes()),
        gateway::audit::checkpoint::CheckpointKeys::new([key]),
        Default::default(),
        |_| {},
    )
    .expect("verification runs");
    assert!(report.ok, "{report:?}");
    assert_eq!(report.last_seq, Some(through));
    assert_eq!(report.checkpoints_matched, checkpoints.len() as u64);
    let mut prev = GENESIS;
    for rec in &all {
        assert_eq!(rec.prev_hash, prev);
        prev = rec.hash;
    }
    let last = all.last().expect("records");
    assert_eq!(
        last.entry.kind.map(|k| k.as_str()),
        Some("audit-read"),
        "the export's own read is its last record"
    );

    let officer = w.officer(SDD);
    let csv = w.get("/v1/audit/export?format=csv", Some(&officer)).await;
    assert_eq!(csv.status, 200);
    assert!(csv
        .content_type
        .as_deref()
        .unwrap_or("")
        .starts_with("text/csv"));
    let csv_through: i64 = csv.headers["x-audit-through-seq"]
        .to_str()
        .expect("header")
        .parse()
        .expect("number");
    let text_csv = text(&csv);
    let mut lines = text_csv.lines();
    assert_eq!(
        lines.next().expect("header").split(',').collect::<Vec<_>>(),
        gateway::audit::export::CSV_COLUMNS
    );
    let rows: Vec<Vec<&str>> = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').collect())
        .collect();
    for row in &rows {
        assert!(row[6] == SDD || row[8] == SDD, "{row:?}");
    }
    let visible = w.list_all(&officer, "").await;
    let expected: Vec<String> = visible
        .iter()
        .filter(|r| r.seq <= csv_through)
        .map(|r| r.seq.to_string())
        .collect();
    let got: Vec<String> = rows.iter().map(|r| r[0].to_owned()).collect();
    assert_eq!(
        got, expected,
        "the CSV holds every record the officer may see"
    );

    let jsonl = text(&w.get("/v1/audit/export", Some(&officer)).await);
    let is_record = |l: &&str| !l.starts_with("{\"checkpoint\"") && !l.starts_with("{\"meta\"");
    let mine: Vec<AuditRecord> = jsonl
        .lines()
        .filter(is_record)
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect();
    assert!(mine.iter().all(|r| party(r, SDD) && r.hash_is_valid()));
    assert!(!mine.is_empty());
    // A scoped export carries only the checkpoints that name one of its own records.
    let mine_seqs: BTreeSet<i64> = mine.iter().map(|r| r.seq).collect();
    for line in jsonl.lines().filter(|l| l.starts_with("{\"checkpoint\"")) {
        let v: Value = serde_json::from_str(line).expect("checkpoint");
        let seq = v["checkpoint"]["seq"].as_i64().expect("seq");
        assert!(
            mine_seqs.contains(&seq),
            "checkpoint {seq} names a record not exported"
        );
    }
    assert!(jsonl.starts_with("{\"meta\":"));
    let filtered = text(
        &w.get(
            "/v1/audit/export?format=jsonl&decision=refuse",
            Some(&w.officer(GORINCHEM)),
        )
        .await,
    );
    let refusals = filtered.lines().filter(is_record).count();
    assert_eq!(refusals, 2);
    // By subject: the BSN travels in the body; only that person's records are exported.
    let about_b = w
        .post(
            "/v1/audit/export",
            &json!({ "subject": { "bsn": BSN_B }, "format": "jsonl" }),
            Some(&w.operator()),
        )
        .await;
    assert_eq!(about_b.status, 200, "{}", text(&about_b));
    let about_b = text(&about_b);
    assert!(!about_b.contains(BSN_B));
    let b = w.pseudonym(BSN_B);
    let of_b: Vec<AuditRecord> = about_b
        .lines()
        .filter(is_record)
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect();
    assert!(
        of_b.len() >= 3,
        "B's handover, permit and refusal: {of_b:?}"
    );
    assert!(of_b
        .iter()
        .all(|r| r.entry.subject_pseudonym.as_deref() == Some(b.as_str())));
    let bad = w.get("/v1/audit/export?format=xml", Some(&officer)).await;
    assert_eq!(bad.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_of_the_audit_log_is_itself_an_audit_record() {
    let w = World::start().await;
    let officer = w.officer(SDD);
    let reads = [
        ("/v1/audit/records?purpose=bijstand-intake", None),
        (
            "/v1/audit/records/search",
            Some(json!({ "subject": { "bsn": BSN_A }, "purpose": "job-mediation" })),
        ),
        (
            "/v1/audit/subject-reports",
            Some(json!({ "subject": { "bsn": BSN_A } })),
        ),
        (
            "/v1/audit/subject-reports",
            Some(json!({ "subject": { "bsn": BSN_B }, "format": "html" })),
        ),
        ("/v1/audit/export?format=csv", None),
        (
            "/v1/audit/export",
            Some(json!({ "subject": { "bsn": BSN_B }, "format": "jsonl" })),
        ),
    ];
    for (path, body) in &reads {
        let r = match body {
            None => w.get(path, Some(&officer)).await,
            Some(body) => w.post(path, body, Some(&officer)).await,
        };
        assert_eq!(r.status, 200, "{path}: {}", text(&r));
    }
    let admin = w.token("admin-1", SDD, &["covenant-admin"]);
    assert_eq!(w.get("/v1/audit/records", Some(&admin)).await.status, 403);

    let logged = w.list_all(&w.operator(), "kind=audit-read").await;
    let by_officer: Vec<&AuditRecord> = logged
        .iter()
        .filter(|r| r.entry.requester_person.as_deref() == Some("fg-00000001823288444000"))
        .collect();
    assert_eq!(by_officer.len(), reads.len(), "{logged:#?}");
    let reasons: Vec<&str> = by_officer
        .iter()
        .map(|r| r.entry.reason.as_deref().unwrap_or(""))
        .collect();
    assert!(reasons[0].starts_with("records"));
    assert!(reasons[1].contains("purpose=job-mediation") && reasons[1].contains("subject="));
    assert_eq!(reasons[2], "subject-report");
    assert_eq!(reasons[3], "subject-report");
    assert!(reasons[4].starts_with("export format=csv"));
    assert!(reasons[5].starts_with("export format=jsonl") && reasons[5].contains("subject="));
    let (a, b) = (w.pseudonym(BSN_A), w.pseudonym(BSN_B));
    let subjects: Vec<Option<&str>> = by_officer
        .iter()
        .map(|r| r.entry.subject_pseudonym.as_deref())
        .collect();
    assert_eq!(
        subjects,
        vec![
            None,
            Some(a.as_str()),
            Some(a.as_str()),
            Some(b.as_str()),
            None,
            Some(b.as_str()),
        ]
    );
    for r in &by_officer {
        assert_eq!(r.entry.requester_oin.as_deref(), Some(SDD));
        assert_eq!(r.entry.decision.map(|d| d.as_str()), Some("permit"));
        let text = serde_json::to_string(r).expect("json");
        assert!(!text.contains(BSN_A) && !text.contains(BSN_B));
    }
    // The refused attempt is on record too, and the operator's own read of the list.
    assert!(logged
        .iter()
        .any(|r| r.entry.requester_person.as_deref() == Some("admin-1")
            && r.entry.decision.map(|d| d.as_str()) == Some("refuse")));
    assert!(logged
        .iter()
        .any(|r| r.entry.requester_person.as_deref() == Some("ops-1")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_is_401_and_a_token_without_the_role_is_403() {
    let w = World::start().await;
    let subject = json!({ "subject": { "bsn": BSN_A } });
    let paths = [
        ("/v1/audit/records", None),
        ("/v1/audit/records/search", Some(&subject)),
        ("/v1/audit/subject-reports", Some(&subject)),
        ("/v1/audit/export?format=csv", None),
        ("/v1/audit/export", Some(&subject)),
    ];
    let foreign = {
        // Signed by a key the gateway does not trust.
        let key = gateway::keys::load_private(
            &w.certs.join("consent-keys/gorinchem-es256.key.pem"),
            jsonwebtoken::Algorithm::ES256,
        )
        .expect("key");
        let now = chrono::Utc::now().timestamp();
        devkit::sign::bearer_token(
            &json!({"iss": "https://login.poortwachter.example", "aud": demo::GATEWAY_ID,
                    "sub": "x", "org": SDD, "roles": ["privacy-officer", "operator"],
                    "exp": now + 600}),
            "issuer-1",
            jsonwebtoken::Algorithm::ES256,
            &key,
        )
        .expect("token")
    };
    for (path, body) in &paths {
        for token in [None, Some("not-a-jwt"), Some(foreign.as_str())] {
            let r = match body {
                None => w.get(path, token).await,
                Some(body) => w.post(path, body, token).await,
            };
            assert_eq!(r.status, 401, "{path} {token:?}");
            assert_eq!(r.json()["reason"], "unauthorized");
            assert!(!text(&r).contains(BSN_A));
        }
        for roles in [&["covenant-admin"][..], &["operator"], &[]] {
            let t = w.token("someone", SDD, roles);
            let r = match body {
                None => w.get(path, Some(&t)).await,
                Some(body) => w.post(path, body, Some(&t)).await,
            };
            assert_eq!(r.status, 403, "{path} {roles:?}");
            assert_eq!(r.json()["reason"], "forbidden");
        }
    }
    // A person needs no organisation certificate: the token is the credential.
    let anonymous = MtlsClient::builder(w.certs.join("ca.pem"))
        .port(w.port)
        .build()
        .expect("client");
    let r = anonymous
        .send(
            Method::GET,
            "/v1/audit/records",
            Some(&w.officer(SDD)),
            None,
        )
        .await
        .expect("answer");
    assert_eq!(r.status, 200, "{}", text(&r));
}

/// Run `poortwachter` with `args`, feeding `stdin`; returns standard output.
fn cli(args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .args(args)
        .env_remove("POORTWACHTER_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("poortwachter runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin written");
    let out = child.wait_with_output().expect("poortwachter ends");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    assert!(!stderr.contains(BSN_A), "{stderr}");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_export_and_report_read_the_offline_database_and_are_recorded() {
    let mut w = World::start().await;
    w.stop().await;
    let config = w.config_path.display().to_string();
    let dir = w.data.path();

    let jsonl = dir.join("export.jsonl");
    let jsonl_arg = jsonl.display().to_string();
    cli(
        &[
            "audit", "export", "--config", &config, "--format", "jsonl", "--out", &jsonl_arg,
        ],
        "",
    );
    let body = std::fs::read_to_string(&jsonl).expect("export written");
    let key = gateway::audit::checkpoint::CheckpointPublicKey::load(
        &w.certs.join("audit/checkpoint-ed25519.pub.pem"),
    )
    .expect("checkpoint key");
    let report = gateway::audit::verify_sources::verify_export(
        std::io::Cursor::new(body.as_bytes()),
        gateway::audit::checkpoint::CheckpointKeys::new([key]),
        Default::default(),
        |_| {},
    )
    .expect("verification runs");
    assert!(report.ok, "{report:?}");
    assert!(report.checkpoints_matched > 0);
    let last: AuditRecord = serde_json::from_str(
        body.lines()
            .rfind(|l| l.starts_with("{\"seq\""))
            .expect("records"),
    )
    .expect("record");
    assert_eq!(last.entry.kind.map(|k| k.as_str()), Some("audit-read"));
    assert!(last
        .entry
        .requester_person
        .as_deref()
        .is_some_and(|p| p.starts_with("console:")));

    let csv = dir.join("export.csv");
    let csv_arg = csv.display().to_string();
    cli(
        &[
            "audit", "export", "--config", &config, "--format", "csv", "--out", &csv_arg,
        ],
        "",
    );
    let rows = std::fs::read_to_string(&csv).expect("csv written");
    assert!(rows.starts_with("seq,id,time,kind,"));
    let checkpoints = std::fs::read_to_string(dir.join("export.csv.checkpoints.jsonl"))
        .expect("checkpoint file written");
    assert!(checkpoints
        .lines()
        .all(|l| l.starts_with("{\"checkpoint\":")));
    assert!(!checkpoints.is_empty());

    let html = cli(
        &[
            "audit", "report", "--config", &config, "--bsn", "-", "--html", "--lang", "en",
        ],
        &format!("{BSN_A}\n"),
    );
    assert!(html.starts_with("<!DOCTYPE html>"));
    for d in &w.disclosed[BSN_A] {
        assert!(html.contains(&d.id));
    }
    for d in &w.disclosed[BSN_B] {
        assert!(!html.contains(&d.id));
    }
    assert!(!html.contains(BSN_A));
    let json: Value = serde_json::from_str(&cli(
        &["audit", "report", "--config", &config, "--bsn", BSN_B],
        "",
    ))
    .expect("JSON report");
    assert_eq!(json["disclosures"].as_array().expect("list").len(), 1);
    assert_eq!(json["scope"]["covers"], "all");

    let store = gateway::store::Store::open(&gateway::config::DatabaseSection::new(format!(
        "sqlite://{}/poortwachter.db",
        dir.canonicalize().expect("dir").display()
    )))
    .await
    .expect("store");
    let all = store.audit_records(0, 100_000).await.expect("records");
    let console: Vec<&AuditRecord> = all
        .iter()
        .filter(|r| {
            r.entry
                .requester_person
                .as_deref()
                .is_some_and(|p| p.starts_with("console:"))
        })
        .collect();
    let reasons: Vec<&str> = console
        .iter()
        .map(|r| r.entry.reason.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(
        reasons,
        vec![
            "export format=jsonl",
            "export format=csv",
            "subject-report",
            "subject-report"
        ]
    );
    assert_eq!(console[2].entry.subject_pseudonym, Some(w.pseudonym(BSN_A)));
    assert_eq!(console[3].entry.subject_pseudonym, Some(w.pseudonym(BSN_B)));
}
