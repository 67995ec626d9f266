//! Live disclosure (issue 18) end to end, against a REAL reference source process
//! (`poortwachter-source`, built from this workspace) over mutual TLS: fields pushed down,
//! derived attributes without their inputs, over-delivery dropped and recorded, and every source
//! fault refused with its own reason and audited. Faults come from the reference source's
//! test-only fault mode (`fault = "hang" | "garbage" | "wrong-subject" | "wrong-type" |
//! "over-deliver"` in its configuration); "down" is the source process killed.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::*;
use devkit::demo::{self, DemoPaths, CLIENT_WITHOUT_CONSENT, CLIENT_WITH_CONSENT};
use gateway::audit::record::AuditRecord;
use serde_json::json;

/// The reference source binary, built on demand (cargo only builds the gateway's own binaries
/// for its tests).
fn source_binary() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(build_source).clone()
}

fn build_source() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "source",
            "--bin",
            "poortwachter-source",
        ])
        .current_dir(repo_root())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the reference source builds");
    // The test binary is target/<profile>/deps/live-…; the source binary is target/<profile>/.
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    dir.join("poortwachter-source")
}

/// A running reference source process; killed on drop.
struct Source {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Source {
    fn start(data: &Path, name: &str, fault: Option<&str>) -> Source {
        let paths = DemoPaths::in_repo(&repo_root(), data);
        let config = demo::write_source_config(&paths, name, "127.0.0.1:0", fault)
            .expect("source configuration");
        let log = data.join(format!("{name}.log"));
        let mut child = Command::new(source_binary())
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("reference source starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("source prints its address");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("an address");
        Source { child, addr, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A gateway with the demo set-up plus the live covenant and `source` as UWV's service.
async fn gateway_with(
    source: SocketAddr,
    adjust: impl FnOnce(&mut gateway::config::Config),
) -> Gateway {
    let data = tempfile::tempdir().expect("temporary directory");
    let config_path = write_demo_config(data.path(), "127.0.0.1:0");
    let paths = DemoPaths::in_repo(&repo_root(), data.path());
    demo::add_live_source(
        &paths,
        &config_path,
        &demo::live_covenant(&repo_root()),
        source,
    )
    .expect("live source configured");
    let mut config = gateway::config::Config::load(&config_path).expect("configuration loads");
    adjust(&mut config);
    let (server, writer) = gateway::cli::serve::start(config)
        .await
        .expect("gateway starts");
    Gateway {
        port: server.addr.port(),
        certs: certs_dir(),
        data,
        config_path,
        server,
        writer,
    }
}

async fn record(gw: &Gateway, id: &str) -> AuditRecord {
    audit_records(&gw.store().await)
        .await
        .into_iter()
        .find(|r| r.entry.id == id)
        .unwrap_or_else(|| panic!("{id} is audited"))
}

#[tokio::test]
async fn a_live_disclosure_releases_exactly_the_granted_fields_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::start(dir.path(), "uwv", None);
    let gw = gateway_with(source.addr, |_| {}).await;

    let r = gw
        .disclose(
            "sdd",
            &ask(CLIENT_WITH_CONSENT, "ww-end-signal", &["ww_end_date", "cv"]),
        )
        .await;
    let v = assert_permitted(&r);
    assert_eq!(v["record"], "found");
    let released = v["released"].as_object().unwrap();
    assert_eq!(released.keys().collect::<Vec<_>>(), ["ww_end_date"]);
    assert_eq!(v["withheld"][0]["field"], "cv");
    let id = v["disclosure_id"].as_str().unwrap();

    let rec = record(&gw, id).await;
    assert_eq!(rec.entry.fields_released, ["ww_end_date"]);
    assert_eq!(
        rec.entry.live.as_ref().unwrap().over_delivered,
        Vec::<String>::new()
    );
    assert_chain_verifies(&gw.store().await).await;

    // Nothing of the answer is stored: the handover store stays empty.
    let db = rusqlite::Connection::open(gw.data.path().join("poortwachter.db")).unwrap();
    let stored: i64 = db
        .query_row("SELECT COUNT(*) FROM handovers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 0, "a live answer is never stored");

    // The source saw who asked, for what, under which covenant and disclosure: never the BSN.
    let log = source.log();
    assert!(log.contains(id), "the source logs the disclosure id: {log}");
    assert!(
        log.contains(devkit::demo::SDD),
        "and the requesting organisation"
    );
    assert!(log.contains("ww-end-signal") && log.contains("drechtsteden-live-ww@1#sha256:"));
    assert!(log.contains("traceparent"));
    assert!(!log.contains(CLIENT_WITH_CONSENT), "never the BSN");
    assert!(
        !log.contains(released["ww_end_date"].as_str().unwrap()),
        "never a value"
    );
}

#[tokio::test]
async fn a_derived_attribute_is_released_without_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::start(dir.path(), "uwv", None);
    let gw = gateway_with(source.addr, |_| {}).await;
    let fields = [
        "ww_ends_within_3_months",
        "partner_income_above_norm",
        "age_band",
        "ww_end_date",
        "partner_income_monthly",
    ];
    // The demo client: WW ends in 45 days, partner earns 1450 (norm 1800): invite.
    let r = gw
        .disclose(
            "sdd",
            &ask(CLIENT_WITH_CONSENT, "max-ww-invitation", &fields),
        )
        .await;
    let v = assert_permitted(&r);
    assert_eq!(
        v["released"],
        json!({"ww_ends_within_3_months": true, "partner_income_above_norm": false, "age_band": "27-49"})
    );
    let withheld: Vec<&str> = v["withheld"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["field"].as_str().unwrap())
        .collect();
    assert_eq!(withheld, ["ww_end_date", "partner_income_monthly"]);
    let body = text(&r);
    assert!(
        !body.contains("1450") && !body.contains("1984"),
        "no input value: {body}"
    );
    let rec = record(&gw, v["disclosure_id"].as_str().unwrap()).await;
    assert!(rec
        .entry
        .fields_released
        .iter()
        .all(|f| !f.contains("income_monthly") && f != "ww_end_date"));
    // The source was asked for the inputs only.
    let log = source.log();
    assert!(log.contains("partner_income_monthly") && log.contains("birth_date"));

    // The other client: WW ends in 200 days, partner earns above the norm: not invited.
    let r = gw
        .disclose(
            "sdd",
            &ask(CLIENT_WITHOUT_CONSENT, "max-ww-invitation", &fields[..2]),
        )
        .await;
    let v = assert_permitted(&r);
    assert_eq!(
        v["released"],
        json!({"ww_ends_within_3_months": false, "partner_income_above_norm": true})
    );
}

#[tokio::test]
async fn fields_the_source_was_not_asked_for_are_dropped_and_recorded_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::start(dir.path(), "uwv", Some("over-deliver"));
    let gw = gateway_with(source.addr, |_| {}).await;
    let r = gw
        .disclose(
            "sdd",
            &ask(CLIENT_WITH_CONSENT, "max-ww-invitation", &["age_band"]),
        )
        .await;
    let v = assert_permitted(&r);
    assert_eq!(v["released"], json!({"age_band": "27-49"}));
    let body = text(&r);
    assert!(!body.contains("Logistiek") && !body.contains("1984-03-12"));
    let rec = record(&gw, v["disclosure_id"].as_str().unwrap()).await;
    let over = &rec.entry.live.as_ref().unwrap().over_delivered;
    assert!(
        over.contains(&"partner_income_monthly".to_owned()),
        "{over:?}"
    );
    assert!(over.contains(&"preferred_sector".to_owned()), "{over:?}");
    assert!(
        !over.contains(&"birth_date".to_owned()),
        "asked for, so not over-delivered"
    );
    assert_chain_verifies(&gw.store().await).await;
}

/// A live request refused because of the source: the problem, its status, and its audit record.
async fn assert_source_refusal(gw: &Gateway, fields: &[&str], status: u16, reason: &str) {
    let r = gw
        .disclose(
            "sdd",
            &ask(CLIENT_WITH_CONSENT, "max-ww-invitation", fields),
        )
        .await;
    let v = assert_problem(&r, status, reason);
    assert!(v.get("released").is_none());
    let id = v["disclosure_id"]
        .as_str()
        .expect("a disclosure id")
        .to_owned();
    let rec = record(gw, &id).await;
    assert_eq!(rec.entry.reason.as_deref(), Some(reason));
    assert!(rec.entry.fields_released.is_empty());
    assert!(rec.entry.live.is_some());
}

#[tokio::test]
async fn a_source_that_is_down_is_refused_with_source_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = Source::start(dir.path(), "uwv", None);
    let gw = gateway_with(source.addr, |_| {}).await;
    let r = gw
        .disclose(
            "sdd",
            &ask(CLIENT_WITH_CONSENT, "max-ww-invitation", &["age_band"]),
        )
        .await;
    assert_permitted(&r);
    source.stop();
    assert_source_refusal(&gw, &["age_band"], 502, "source-unavailable").await;
    assert_chain_verifies(&gw.store().await).await;
}

#[tokio::test]
async fn a_hanging_source_is_refused_with_source_timeout_within_the_configured_bound() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::start(dir.path(), "uwv", Some("hang"));
    let gw = gateway_with(source.addr, |c| {
        c.sources[0].answer_timeout_ms = 300;
    })
    .await;
    assert_source_refusal(&gw, &["age_band"], 504, "source-timeout").await;
}

#[tokio::test]
async fn garbage_from_the_source_is_refused_with_source_invalid_answer() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::start(dir.path(), "uwv", Some("garbage"));
    let gw = gateway_with(source.addr, |_| {}).await;
    assert_source_refusal(&gw, &["age_band"], 502, "source-invalid-answer").await;
}

#[tokio::test]
async fn an_answer_about_another_subject_is_refused_with_source_invalid_answer() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::start(dir.path(), "uwv", Some("wrong-subject"));
    let gw = gateway_with(source.addr, |_| {}).await;
    assert_source_refusal(&gw, &["age_band"], 502, "source-invalid-answer").await;
}

#[tokio::test]
async fn a_value_of_the_wrong_type_is_refused_with_source_invalid_answer() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::start(dir.path(), "uwv", Some("wrong-type"));
    let gw = gateway_with(source.addr, |_| {}).await;
    assert_source_refusal(&gw, &["age_band"], 502, "source-invalid-answer").await;
}

#[tokio::test]
async fn a_source_certificate_from_another_ca_is_refused_with_source_unavailable() {
    // The source's CA is pinned per source: a source presenting a certificate from the
    // development CA is not trusted when the configuration pins another CA.
    let dir = tempfile::tempdir().unwrap();
    let source = Source::start(dir.path(), "uwv", None);
    let gw = gateway_with(source.addr, |c| {
        c.sources[0].ca = certs_dir().join("foreign-ca.pem");
    })
    .await;
    assert_source_refusal(&gw, &["age_band"], 502, "source-unavailable").await;
    assert!(!source.log().contains("field query answered"));
}

#[tokio::test]
async fn the_source_answers_only_the_gateways_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::start(dir.path(), "uwv", None);
    // SDD's certificate is from the same CA, but SDD is not the gateway.
    let sdd = client(&certs_dir(), "sdd", source.addr.port());
    let query = json!({
        "subject": CLIENT_WITH_CONSENT, "fields": ["ww_end_date"], "purpose": "ww-end-signal",
        "requester_oin": devkit::demo::SDD, "covenant": "x", "disclosure_id": "dsc_x"
    });
    let r = post(&sdd, "/v1/field-queries", &query).await;
    assert_eq!(r.status, 403, "{}", text(&r));
    assert_eq!(r.json()["reason"], "client-not-allowed");
    assert!(!text(&r).contains("2026") && !text(&r).contains("2027"));
}

#[tokio::test]
async fn the_breaker_opens_after_failures_and_shows_on_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = Source::start(dir.path(), "uwv", None);
    let gw = gateway_with(source.addr, |c| {
        c.sources[0].breaker_failures = 2;
        c.sources[0].breaker_open_ms = 600_000;
    })
    .await;
    source.stop();
    for _ in 0..3 {
        assert_source_refusal(&gw, &["age_band"], 502, "source-unavailable").await;
    }
    let metrics = text(&gw.client("sdd").get("/metrics").await.unwrap());
    let uwv = devkit::demo::UWV;
    let line = |l: String| assert!(metrics.contains(&l), "{l} in\n{metrics}");
    line(format!(
        "poortwachter_source_breaker_state{{source=\"{uwv}\"}} 1"
    ));
    line(format!(
        "poortwachter_source_calls_total{{source=\"{uwv}\",outcome=\"source-unavailable\"}} 2"
    ));
    line(format!(
        "poortwachter_source_calls_total{{source=\"{uwv}\",outcome=\"breaker-open\"}} 1"
    ));
    line(format!(
        "poortwachter_source_failures_total{{source=\"{uwv}\"}} 2"
    ));
}

#[tokio::test]
async fn the_demos_live_part_shows_a_live_disclosure_the_selection_rule_and_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = Source::start(dir.path(), "uwv", None);
    let gw = gateway_with(source.addr, |_| {}).await;
    let outcome = demo::run_live_scenario(&certs_dir(), gw.port, move || {
        source.stop();
        Ok(())
    })
    .await
    .expect("the live scenario runs");
    assert_eq!(
        outcome,
        demo::LiveOutcome {
            live_status: 200,
            invited: (true, false),
            stopped_reason: "source-unavailable".into(),
        }
    );
}
