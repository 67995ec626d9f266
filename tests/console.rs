//! The web console's rules over real TLS, without a browser: the security headers, the session
//! cookie's attributes, CSRF on every form, the meta-audit of page views with the person, an
//! officer seeing only their own organisation's records, no BSN in a URL, logout. The login here
//! is the demo's development login (the demo configuration enables it); the OpenID Connect login
//! through a real provider in a real browser is tests/console-e2e/run.sh.

mod common;

use common::{ask, Gateway};
use devkit::client::{ClientResponse, MtlsClient};
use devkit::demo::{GORINCHEM, SDD};
use gateway::audit::entry::AuditKind;
use hyper::Method;

const BSN: &str = "999999990";

fn set_cookie(r: &ClientResponse, name: &str) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn cookie_value(r: &ClientResponse, name: &str) -> String {
    let c = set_cookie(r, name).unwrap_or_else(|| panic!("{name} is set"));
    c[name.len() + 1..].split(';').next().unwrap().to_owned()
}

fn body(r: &ClientResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The value of the hidden `csrf` field of the first form.
/// `page?name=value`: how the attack tests put a value in an address.
fn with_query(page: &str, name: &str, value: &str) -> String {
    format!("{page}?{name}={value}")
}

fn csrf_field(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// A browser session: the session cookie and the CSRF token of its forms.
struct Browser {
    client: MtlsClient,
    cookie: String,
    csrf: String,
}

impl Browser {
    async fn login(gw: &Gateway, org: &str, role: &str) -> Browser {
        let client = gw.anonymous_client();
        let page = client.get("/console/").await.unwrap();
        assert_eq!(page.status, 200);
        let login = cookie_value(&page, "__Host-pw_login");
        let csrf = csrf_field(&body(&page));
        let form = format!("csrf={csrf}&org={org}&role={role}");
        let r = client
            .send_form(
                Method::POST,
                "/console/dev-login",
                &[("cookie", &format!("__Host-pw_login={login}"))],
                Some(&form),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", body(&r));
        let cookie = format!(
            "__Host-pw_session={}",
            cookie_value(&r, "__Host-pw_session")
        );
        let home = client
            .send_form(Method::GET, "/console/", &[("cookie", &cookie)], None)
            .await
            .unwrap();
        let csrf = csrf_field(&body(&home));
        Browser {
            client,
            cookie,
            csrf,
        }
    }

    async fn get(&self, path: &str) -> ClientResponse {
        self.client
            .send_form(Method::GET, path, &[("cookie", &self.cookie)], None)
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, form: &str) -> ClientResponse {
        self.client
            .send_form(Method::POST, path, &[("cookie", &self.cookie)], Some(form))
            .await
            .unwrap()
    }
}

async fn gateway_with_records() -> Gateway {
    let gw = Gateway::start().await;
    // A decision between the Sociale Dienst and UWV, and one of Gorinchem alone.
    gw.disclose("sdd", &ask(BSN, "bijstand-intake", &["ww_end_date"]))
        .await;
    gw.disclose("gorinchem", &ask(BSN, "job-mediation", &["own_transport"]))
        .await;
    gw
}

#[tokio::test]
async fn console_pages_carry_a_strict_policy_and_the_session_cookie_is_strict() {
    let gw = Gateway::start().await;
    let r = gw.anonymous_client().get("/console/").await.unwrap();
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("script"), "{csp}");
    assert_eq!(r.headers["x-frame-options"], "DENY");
    assert_eq!(r.headers["cache-control"], "no-store");
    let client = gw.anonymous_client();
    let login = cookie_value(&r, "__Host-pw_login");
    let form = format!(
        "csrf={}&org={SDD}&role=privacy-officer",
        csrf_field(&body(&r))
    );
    let r = client
        .send_form(
            Method::POST,
            "/console/dev-login",
            &[("cookie", &format!("__Host-pw_login={login}"))],
            Some(&form),
        )
        .await
        .unwrap();
    let session = set_cookie(&r, "__Host-pw_session").expect("a session cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(session.split("; ").any(|a| a == attr), "{attr}: {session}");
    }
    assert!(!session.contains("Domain"));
}

#[tokio::test]
async fn console_forms_without_the_csrf_token_are_refused() {
    let gw = Gateway::start().await;
    let officer = Browser::login(&gw, SDD, "privacy-officer").await;
    for form in [
        String::new(),
        "csrf=guessed".into(),
        format!("csrf={}x", officer.csrf),
    ] {
        let r = officer.post("/console/verify", &form).await;
        assert_eq!(r.status, 403, "{form}");
    }
    let r = officer
        .post("/console/subject-report", &format!("bsn={BSN}"))
        .await;
    assert_eq!(r.status, 403);
    assert!(!body(&r).contains(BSN), "the BSN is not echoed");
    let r = officer.post("/console/logout", "").await;
    assert_eq!(r.status, 403, "logout needs the token too");
    let r = officer
        .post("/console/verify", &format!("csrf={}", officer.csrf))
        .await;
    assert_eq!(r.status, 200);
    // The development login's form is protected by its double-submit token.
    let r = gw
        .anonymous_client()
        .send_form(
            Method::POST,
            "/console/dev-login",
            &[],
            Some(&format!("csrf=x&org={SDD}&role=privacy-officer")),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert!(set_cookie(&r, "__Host-pw_session").is_none());
}

#[tokio::test]
async fn console_page_views_are_audited_with_the_person() {
    let gw = gateway_with_records().await;
    let officer = Browser::login(&gw, SDD, "privacy-officer").await;
    let r = officer.get("/console/records").await;
    assert_eq!(r.status, 200);
    assert!(body(&r).contains("bijstand-intake"));
    let r = officer.get("/console/overview").await;
    assert_eq!(r.status, 200);
    assert!(
        body(&r).contains("<svg"),
        "the chart is drawn by the server"
    );
    let r = officer
        .post(
            "/console/subject-report",
            &format!("csrf={}&bsn={BSN}", officer.csrf),
        )
        .await;
    assert_eq!(r.status, 200);
    let records = common::audit_records(&gw.store().await).await;
    let reads: Vec<_> = records
        .iter()
        .filter(|r| r.entry.kind == Some(AuditKind::AuditRead))
        .filter(|r| r.entry.requester_person.as_deref() == Some("dev:privacy-officer"))
        .collect();
    assert!(
        reads.len() >= 3,
        "records, overview, report: {}",
        reads.len()
    );
    assert!(reads
        .iter()
        .all(|r| r.entry.requester_oin.as_deref() == Some(SDD)));
    assert!(
        reads.iter().any(|r| r.entry.subject_pseudonym.is_some()),
        "the report's read names the subject by pseudonym"
    );
}

#[tokio::test]
async fn console_officer_sees_only_their_own_organisations_records() {
    let gw = gateway_with_records().await;
    let records = common::audit_records(&gw.store().await).await;
    let sdd_only = records
        .iter()
        .find(|r| {
            r.entry.requester_oin.as_deref() == Some(SDD)
                && r.entry.kind == Some(AuditKind::Disclosure)
        })
        .expect("the Sociale Dienst's disclosure")
        .seq;
    let sdd = Browser::login(&gw, SDD, "privacy-officer").await;
    assert_eq!(
        sdd.get(&format!("/console/records/{sdd_only}"))
            .await
            .status,
        200
    );
    let gorinchem = Browser::login(&gw, GORINCHEM, "privacy-officer").await;
    let r = gorinchem.get(&format!("/console/records/{sdd_only}")).await;
    assert_eq!(r.status, 404);
    let list = body(&gorinchem.get("/console/records").await);
    assert!(!list.contains(&format!("/console/records/{sdd_only}\"")));
    assert!(
        list.contains("job-mediation"),
        "Gorinchem's own refusal is listed"
    );
    // Roles: an officer opens no covenant page, an administrator no audit page.
    assert_eq!(sdd.get("/console/covenants").await.status, 403);
    let admin = Browser::login(&gw, SDD, "covenant-admin").await;
    assert_eq!(admin.get("/console/records").await.status, 403);
    assert_eq!(admin.get("/console/covenants").await.status, 200);
}

#[tokio::test]
async fn console_refuses_a_bsn_in_the_url_without_echo() {
    let gw = Gateway::start().await;
    let officer = Browser::login(&gw, SDD, "privacy-officer").await;
    // The addresses an attacker (or a careless link) would make: a page, a parameter, the BSN.
    for (page, name) in [
        ("/console/records", "bsn"),
        ("/console/records", "subject"),
        ("/console/subject-report", "burgerservicenummer"),
        ("/console/records", "purpose=x&BSN"),
    ] {
        let path = with_query(page, name, BSN);
        let r = officer.get(&path).await;
        assert_eq!(r.status, 400, "{path}");
        assert!(!body(&r).contains(BSN), "{path} echoed");
    }
    // A name the records filter does not take is refused too, without echo.
    let r = officer
        .get(&with_query("/console/records", "person", BSN))
        .await;
    assert_eq!(r.status, 400);
    assert!(!body(&r).contains(BSN));
}

#[tokio::test]
async fn console_logout_ends_the_session_on_the_server() {
    let gw = Gateway::start().await;
    let officer = Browser::login(&gw, SDD, "privacy-officer").await;
    assert!(body(&officer.get("/console/records").await).contains("<h1>"));
    let r = officer
        .post("/console/logout", &format!("csrf={}", officer.csrf))
        .await;
    assert_eq!(r.status, 200);
    let cleared = set_cookie(&r, "__Host-pw_session").unwrap();
    assert!(cleared.contains("Max-Age=0"));
    // The old cookie, replayed, opens nothing.
    let r = officer.get("/console/records").await;
    assert!(!body(&r).contains("<table"));
    assert!(body(&r).contains("/console/login/") || body(&r).contains("dev-login"));
}

#[tokio::test]
async fn console_usage_report_counts_the_officers_own_employees_and_is_audited() {
    let gw = Gateway::start().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Two disclosure requests by one Sociale Dienst employee (verified actor), one without.
    for _ in 0..2 {
        let token = devkit::demo::sdd_actor_assertion(&gw.certs, "emp-4711", &[], now).unwrap();
        let r = gw
            .client("sdd")
            .send_with_headers(
                Method::POST,
                "/v1/disclosures",
                None,
                &[("actor-token", &token)],
                Some(serde_json::to_vec(&ask(BSN, "bijstand-intake", &["ww_end_date"])).unwrap()),
            )
            .await
            .unwrap();
        assert_ne!(r.status, 500);
    }
    gw.disclose("sdd", &ask(BSN, "bijstand-intake", &["ww_end_date"]))
        .await;

    let officer = Browser::login(&gw, SDD, "privacy-officer").await;
    let form = officer.get("/console/usage").await;
    assert_eq!(form.status, 200);
    assert!(body(&form).contains("name=\"from\""));
    // Without the CSRF token: refused before anything is read.
    let today = chrono::Utc::now().date_naive();
    let period = format!("from={}&to={}", today - chrono::Duration::days(1), today);
    assert_eq!(officer.post("/console/usage", &period).await.status, 403);
    // A period the wrong way round: the form again, with the problem.
    let backwards = format!(
        "csrf={}&from={}&to={}",
        officer.csrf,
        today,
        today - chrono::Duration::days(3)
    );
    let r = officer.post("/console/usage", &backwards).await;
    assert_eq!(r.status, 422);
    assert!(body(&r).contains("role=\"alert\""));

    let r = officer
        .post("/console/usage", &format!("csrf={}&{period}", officer.csrf))
        .await;
    assert_eq!(r.status, 200);
    let page = body(&r);
    assert!(page.contains("Gebruiksrapportage"));
    let row = page
        .lines()
        .find(|l| l.contains("emp-4711"))
        .expect("a row for the employee");
    assert!(
        row.contains("<td class=\"n\">2</td>"),
        "two disclosure requests: {row}"
    );
    assert!(page.contains("(no actor assertion)"));
    assert!(!page.contains(BSN), "clients appear only as counts");

    // Gorinchem's officer does not see the Sociale Dienst's employees.
    let other = Browser::login(&gw, GORINCHEM, "privacy-officer").await;
    let r = other
        .post("/console/usage", &format!("csrf={}&{period}", other.csrf))
        .await;
    assert_eq!(r.status, 200);
    assert!(!body(&r).contains("emp-4711"));

    // The read is an audit record with the person.
    let records = common::audit_records(&gw.store().await).await;
    assert!(records.iter().any(|r| {
        r.entry.kind == Some(AuditKind::AuditRead)
            && r.entry.requester_oin.as_deref() == Some(SDD)
            && r.entry.requester_person.as_deref() == Some("dev:privacy-officer")
    }));
}
