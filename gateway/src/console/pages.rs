//! The console's pages: thin handlers that take the person from the session, check the role and
//! (for forms) the CSRF token, call the use-case the API calls, and render an askama template.
//! Privacy officers see their own organisation's records only (`Reader::officer`, the API's
//! rule); covenant administrators act through `ops::covenants::acts`, recorded with their name.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};

use super::web::{self, Lang, Texts, LOGIN_COOKIE};
use super::{html, Console, Who};
use crate::audit::export::{self, ExportFormat};
use crate::audit::record::{AuditRecord, Outcome};
use crate::audit::review::{self, PageRequest, Params, Reader, ReviewError, ReviewFilter};
use crate::auth::Role;
use crate::ops::covenants::acts::{self, Actor, Transition};
use crate::ops::covenants::views::{self, SignatureStatus, VersionView};
use crate::ops::error::OpError;
use crate::state::AppState;

/// Marks the printable report, which carries its own (inline) style sheet.
#[derive(Clone, Copy)]
pub struct ReportDocument;

/// The names and values of a submitted form.
pub struct Fields<'a>(pub &'a [(String, String)]);

impl<'a> Fields<'a> {
    /// The value of `name` when given once.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        let mut it = self.0.iter().filter(|(k, _)| k == name);
        let first = it.next()?;
        it.next().is_none().then_some(first.1.as_str())
    }
}

/// The routes of the pages behind login.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/overview", get(overview))
        .route("/console/records", get(records))
        .route("/console/records/{seq}", get(record))
        .route("/console/subject-report", get(report_form).post(report))
        .route("/console/usage", get(usage_form).post(usage_report))
        .route("/console/export", get(export_form).post(export_download))
        .route("/console/verify", get(verify_form).post(verify))
        .route("/console/covenants", get(covenants))
        .route("/console/covenants/new", get(draft_form).post(draft))
        .route("/console/covenants/{id}", get(covenant))
        .route(
            "/console/covenants/{id}/versions/{version}/signatures",
            post(sign),
        )
        .route("/console/covenants/{id}/{act}", get(act_form).post(act))
}

/// The header of every page.
pub struct Layout {
    pub t: &'static Texts,
    pub lang: &'static str,
    pub other_lang: &'static str,
    pub title: String,
    pub user: Option<User>,
    pub development: bool,
}

pub struct User {
    pub name: String,
    pub org: String,
    pub csrf: String,
    pub officer: bool,
    pub admin: bool,
}

fn layout(lang: Lang, title: &str, who: Option<&Who>, console: Option<&Console>) -> Layout {
    Layout {
        t: lang.texts(),
        lang: lang.code(),
        other_lang: match lang {
            Lang::Nl => "en",
            Lang::En => "nl",
        },
        title: title.to_owned(),
        user: who.map(|w| User {
            name: w.session.name.clone(),
            org: w.session.claims.org.to_string(),
            csrf: w.session.csrf.clone(),
            officer: w.session.claims.has(Role::PrivacyOfficer),
            admin: w.session.claims.has(Role::CovenantAdmin),
        }),
        development: who.is_some_and(|w| w.session.development)
            || console.is_some_and(|c| c.development_login),
    }
}

fn render<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(s) => {
            let mut r = html(s);
            *r.status_mut() = status;
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "a console page could not be rendered");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage {
    l: Layout,
    message: String,
    refresh: bool,
    error: bool,
}

/// An error page in the person's language; the message never echoes input.
pub fn error_page(lang: Lang, status: StatusCode, message: &str) -> Response {
    let t = lang.texts();
    render(
        status,
        &MessagePage {
            l: layout(lang, t.error_title, None, None),
            message: message.to_owned(),
            refresh: false,
            error: true,
        },
    )
}

pub fn logged_in_page(lang: Lang) -> Response {
    let t = lang.texts();
    render(
        StatusCode::OK,
        &MessagePage {
            l: layout(lang, t.logged_in, None, None),
            message: t.logged_in.to_owned(),
            refresh: true,
            error: false,
        },
    )
}

pub fn logged_out_page(lang: Lang) -> Response {
    let t = lang.texts();
    render(
        StatusCode::OK,
        &MessagePage {
            l: layout(lang, t.logged_out, None, None),
            message: t.logged_out.to_owned(),
            refresh: false,
            error: false,
        },
    )
}

/// The failure of a use-case as a page (reasons, never values).
fn op_error(lang: Lang, e: OpError) -> Response {
    let t = lang.texts();
    match e {
        OpError::NotFound => error_page(lang, StatusCode::NOT_FOUND, t.not_found),
        OpError::Forbidden | OpError::Unauthorized => {
            error_page(lang, StatusCode::FORBIDDEN, t.forbidden)
        }
        OpError::AuditUnavailable | OpError::Unavailable | OpError::Internal => {
            error_page(lang, StatusCode::SERVICE_UNAVAILABLE, t.unavailable)
        }
        other => error_page(
            lang,
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("{}: {other}", t.bad_input),
        ),
    }
}

fn review_error(lang: Lang, e: ReviewError) -> Response {
    op_error(lang, e.into())
}

/// The session's person, or the login page.
#[allow(clippy::result_large_err)]
fn person(console: &Console, headers: &HeaderMap) -> Result<(Lang, Who), Response> {
    let lang = Lang::from_cookie(headers);
    match Who::from(console, headers) {
        Some(w) => Ok((lang, w)),
        None => Err(login_page(console, lang)),
    }
}

/// A person with `role`, else a forbidden page.
#[allow(clippy::result_large_err)]
fn with_role(console: &Console, headers: &HeaderMap, role: Role) -> Result<(Lang, Who), Response> {
    let (lang, who) = person(console, headers)?;
    if who.claims().has(role) {
        Ok((lang, who))
    } else {
        Err(error_page(
            lang,
            StatusCode::FORBIDDEN,
            lang.texts().forbidden,
        ))
    }
}

/// A form post: a person with `role` whose form carries the session's CSRF token.
#[allow(clippy::result_large_err)]
fn form_post(
    console: &Console,
    headers: &HeaderMap,
    role: Role,
    form: &[(String, String)],
) -> Result<(Lang, Who), Response> {
    let lang = Lang::from_cookie(headers);
    let Some(who) = Who::from(console, headers) else {
        return Err(error_page(
            lang,
            StatusCode::FORBIDDEN,
            lang.texts().csrf_failed,
        ));
    };
    if !web::csrf_ok(&who.session.csrf, Fields(form).get("csrf")) {
        tracing::warn!("console form without a valid CSRF token refused");
        return Err(error_page(
            lang,
            StatusCode::FORBIDDEN,
            lang.texts().csrf_failed,
        ));
    }
    if !who.claims().has(role) {
        return Err(error_page(
            lang,
            StatusCode::FORBIDDEN,
            lang.texts().forbidden,
        ));
    }
    Ok((lang, who))
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    l: Layout,
    providers: Vec<(usize, String)>,
    dev_csrf: String,
    organisations: Vec<(String, String)>,
}

fn login_page(console: &Console, lang: Lang) -> Response {
    let t = lang.texts();
    let dev_csrf = if console.development_login {
        super::session::random_token()
    } else {
        String::new()
    };
    let mut resp = render(
        StatusCode::OK,
        &LoginPage {
            l: layout(lang, t.login_title, None, Some(console)),
            providers: console
                .providers
                .iter()
                .map(|p| {
                    let name = console
                        .organisations
                        .iter()
                        .find(|(o, _)| *o == p.section.organisation.as_str())
                        .map_or_else(|| p.section.organisation.to_string(), |(_, n)| n.clone());
                    (p.index, name)
                })
                .collect(),
            dev_csrf: dev_csrf.clone(),
            organisations: console.organisations.clone(),
        },
    );
    if console.development_login {
        resp.headers_mut().append(
            header::SET_COOKIE,
            web::cookie(LOGIN_COOKIE, &dev_csrf, "Strict", Some(600)),
        );
    }
    resp
}

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage {
    l: Layout,
}

pub async fn home(Extension(console): Extension<Arc<Console>>, headers: HeaderMap) -> Response {
    let (lang, who) = match person(&console, &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    render(
        StatusCode::OK,
        &HomePage {
            l: layout(lang, lang.texts().home, Some(&who), Some(&console)),
        },
    )
}

// ---- privacy officer ----

/// The query parameters of the records page: the filter and the page; none names a person.
/// Records carry the verified employee since issue 16, but the API takes that filter (`actor`)
/// only in a request body; an employee filter here would need a POST form (not built yet). The
/// per-employee view is the usage report (`/console/usage`).
pub const RECORDS_QUERY: &[&str] = &[
    "from", "to", "purpose", "org", "decision", "reason", "kind", "cursor",
];

/// Records per page on the console.
const PAGE: i64 = 50;

struct Row {
    seq: i64,
    time: String,
    kind: String,
    purpose: String,
    requester: String,
    source: String,
    decision: String,
    permit: bool,
    reason: String,
    person: String,
}

fn row(r: &AuditRecord) -> Row {
    let e = &r.entry;
    Row {
        seq: r.seq,
        time: e
            .time
            .chars()
            .take(19)
            .collect::<String>()
            .replace('T', " "),
        kind: e.kind.map(|k| k.as_str().to_owned()).unwrap_or_default(),
        purpose: e.purpose.clone().unwrap_or_default(),
        requester: e.requester_oin.clone().unwrap_or_default(),
        source: e.source_oin.clone().unwrap_or_default(),
        decision: match e.decision {
            Some(Outcome::Permit) => "permit".into(),
            Some(Outcome::Refuse) => "refuse".into(),
            None => String::new(),
        },
        permit: e.decision == Some(Outcome::Permit),
        reason: e.reason.clone().unwrap_or_default(),
        person: e.requester_person.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "console/records.html")]
struct RecordsPage {
    l: Layout,
    filter: Vec<(String, String)>,
    rows: Vec<Row>,
    next: Option<String>,
    first: bool,
    problem: Option<String>,
}

impl RecordsPage {
    fn value(&self, name: &str) -> String {
        self.filter
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

type QueryPairs = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

async fn records(
    axum::extract::State(state): axum::extract::State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Response {
    let (lang, who) = match with_role(&console, &headers, Role::PrivacyOfficer) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = lang.texts();
    let Ok(Query(pairs)) = query else {
        return error_page(lang, StatusCode::BAD_REQUEST, t.bad_input);
    };
    // Empty form fields mean "any".
    let pairs: Vec<(String, String)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let mut page = RecordsPage {
        l: layout(lang, t.records, Some(&who), Some(&console)),
        filter: pairs.clone(),
        rows: Vec::new(),
        next: None,
        first: true,
        problem: None,
    };
    let parsed = Params::parse(&pairs, RECORDS_QUERY).and_then(|p| {
        let filter = ReviewFilter::from_params(&p)?;
        let mut req = PageRequest::from_params(&p)?;
        req.limit = PAGE;
        Ok((filter, req))
    });
    let (filter, req) = match parsed {
        Ok(x) => x,
        Err(e @ (ReviewError::InvalidParameter { .. } | ReviewError::UnknownParameter { .. })) => {
            page.problem = Some(e.to_string());
            page.filter.clear();
            return render(StatusCode::BAD_REQUEST, &page);
        }
        Err(e) => return review_error(lang, e),
    };
    let reader = match Reader::officer(who.claims()) {
        Ok(r) => officer_scope(r),
        Err(e) => return review_error(lang, e),
    };
    match review::list(&state, &reader, &filter, req).await {
        Ok(p) => {
            page.rows = p.records.iter().map(row).collect();
            page.first = req.after == 0;
            page.next = p.next_cursor.map(|c| {
                let mut q: Vec<(String, String)> = pairs
                    .iter()
                    .filter(|(k, _)| k != "cursor")
                    .cloned()
                    .collect();
                q.push(("cursor".into(), c));
                query_string(&q)
            });
            page.filter.retain(|(k, _)| k != "cursor");
            render(StatusCode::OK, &page)
        }
        Err(e) => review_error(lang, e),
    }
}

/// The console never widens an officer's scope: the `operator` role is not given by the
/// console's login, so this is the organisation's scope (kept explicit).
fn officer_scope(r: Reader) -> Reader {
    match &r.org {
        Some(org) => Reader {
            scope: review::Scope::Organisation(org.clone()),
            ..r
        },
        None => r,
    }
}

fn query_string(pairs: &[(String, String)]) -> String {
    let mut s = String::new();
    for (k, v) in pairs {
        if !s.is_empty() {
            s.push('&');
        }
        s.push_str(&urlencode(k));
        s.push('=');
        s.push_str(&urlencode(v));
    }
    s
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Template)]
#[template(path = "console/record.html")]
struct RecordPage {
    l: Layout,
    r: Row,
    legal_basis: String,
    covenant: String,
    released: Vec<String>,
    withheld: Vec<String>,
    hash: String,
    id: String,
}

async fn record(
    axum::extract::State(state): axum::extract::State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    Path(seq): Path<String>,
) -> Response {
    let (lang, who) = match with_role(&console, &headers, Role::PrivacyOfficer) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = lang.texts();
    let Some(seq) = seq.parse::<i64>().ok().filter(|s| *s > 0) else {
        return error_page(lang, StatusCode::NOT_FOUND, t.not_found);
    };
    let reader = match Reader::officer(who.claims()) {
        Ok(r) => officer_scope(r),
        Err(e) => return review_error(lang, e),
    };
    let req = PageRequest {
        after: seq - 1,
        limit: 1,
    };
    let page = match review::list(&state, &reader, &ReviewFilter::default(), req).await {
        Ok(p) => p,
        Err(e) => return review_error(lang, e),
    };
    // Another organisation's record is "not found", as a record that does not exist.
    let Some(rec) = page.records.into_iter().find(|r| r.seq == seq) else {
        return error_page(lang, StatusCode::NOT_FOUND, t.not_found);
    };
    let e = &rec.entry;
    render(
        StatusCode::OK,
        &RecordPage {
            l: layout(lang, t.record, Some(&who), Some(&console)),
            r: row(&rec),
            legal_basis: e.legal_basis.clone().unwrap_or_default(),
            covenant: e.covenant.clone().unwrap_or_default(),
            released: e.fields_released.clone(),
            withheld: e
                .fields_withheld
                .iter()
                .map(|w| serde_json::to_string(w).unwrap_or_default())
                .collect(),
            hash: rec.hash.to_string(),
            id: e.id.clone(),
        },
    )
}

#[derive(Template)]
#[template(path = "console/report_form.html")]
struct ReportForm {
    l: Layout,
    problem: Option<String>,
}

async fn report_form(Extension(console): Extension<Arc<Console>>, headers: HeaderMap) -> Response {
    let (lang, who) = match with_role(&console, &headers, Role::PrivacyOfficer) {
        Ok(p) => p,
        Err(r) => return r,
    };
    render(
        StatusCode::OK,
        &ReportForm {
            l: layout(
                lang,
                lang.texts().subject_report,
                Some(&who),
                Some(&console),
            ),
            problem: None,
        },
    )
}

/// The data-subject report: the BSN comes in the POST body only; the answer is the same
/// printable document the API gives, and the read is in the audit log with the person.
async fn report(
    axum::extract::State(state): axum::extract::State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let (lang, who) = match form_post(&console, &headers, Role::PrivacyOfficer, &form) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = lang.texts();
    let bsn = Fields(&form)
        .get("bsn")
        .map(|b| b.trim().replace([' ', '.'], ""))
        .and_then(|b| b.parse::<policy::Bsn>().ok());
    let Some(bsn) = bsn else {
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ReportForm {
                l: layout(lang, t.subject_report, Some(&who), Some(&console)),
                problem: Some(OpError::InvalidBsn.to_string()),
            },
        );
    };
    let reader = match Reader::officer(who.claims()) {
        Ok(r) => officer_scope(r),
        Err(e) => return review_error(lang, e),
    };
    match crate::audit::report::build(&state, &reader, &bsn).await {
        Ok(report) => {
            let mut resp = html(crate::audit::report::render_html(&report, lang.report()));
            resp.extensions_mut().insert(ReportDocument);
            resp
        }
        Err(e) => review_error(lang, e),
    }
}

#[derive(Template)]
#[template(path = "console/usage_form.html")]
struct UsageForm {
    l: Layout,
    problem: Option<String>,
    from: String,
    to: String,
}

/// The usage report's form: the last seven days (UTC dates) filled in.
async fn usage_form(Extension(console): Extension<Arc<Console>>, headers: HeaderMap) -> Response {
    let (lang, who) = match with_role(&console, &headers, Role::PrivacyOfficer) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let today = chrono::Utc::now().date_naive();
    render(
        StatusCode::OK,
        &UsageForm {
            l: layout(lang, lang.texts().usage, Some(&who), Some(&console)),
            problem: None,
            from: (today - chrono::Duration::days(6)).to_string(),
            to: today.to_string(),
        },
    )
}

/// The per-employee usage report of the officer's own organisation (issue 16): the same
/// printable page as `GET /v1/audit/usage-reports?format=html`, and the read is audited with the
/// person.
async fn usage_report(
    axum::extract::State(state): axum::extract::State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    use crate::audit::usage;
    let (lang, who) = match form_post(&console, &headers, Role::PrivacyOfficer, &form) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = lang.texts();
    let fields = Fields(&form);
    let date = |name: &str| {
        fields
            .get(name)
            .and_then(|v| chrono::NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").ok())
    };
    let again = |problem: String| {
        render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &UsageForm {
                l: layout(lang, t.usage, Some(&who), Some(&console)),
                problem: Some(problem),
                from: fields.get("from").unwrap_or_default().to_owned(),
                to: fields.get("to").unwrap_or_default().to_owned(),
            },
        )
    };
    let (Some(from), Some(to)) = (date("from"), date("to")) else {
        return again(t.usage_bad_period.into());
    };
    if usage::check_period(from, to).is_err() {
        return again(t.usage_bad_period.into());
    }
    let reader = match Reader::officer(who.claims()) {
        Ok(r) => officer_scope(r),
        Err(e) => return review_error(lang, e),
    };
    let Some(own) = reader.org.clone() else {
        return review_error(lang, ReviewError::Forbidden);
    };
    match usage::build(&state, &reader, &own, from, to).await {
        Ok(rows) => {
            let page = usage::html(
                &rows,
                &own.to_string(),
                from,
                to,
                &state.config.usage_review,
            );
            let mut resp = html(page);
            resp.extensions_mut().insert(ReportDocument);
            resp
        }
        Err(e) => review_error(lang, e),
    }
}

#[derive(Template)]
#[template(path = "console/export.html")]
struct ExportPage {
    l: Layout,
}

async fn export_form(Extension(console): Extension<Arc<Console>>, headers: HeaderMap) -> Response {
    let (lang, who) = match with_role(&console, &headers, Role::PrivacyOfficer) {
        Ok(p) => p,
        Err(r) => return r,
    };
    render(
        StatusCode::OK,
        &ExportPage {
            l: layout(lang, lang.texts().export, Some(&who), Some(&console)),
        },
    )
}

/// The export parameters the form may send.
const EXPORT_FORM: &[&str] = &[
    "from", "to", "purpose", "decision", "reason", "format", "csrf",
];

async fn export_download(
    axum::extract::State(state): axum::extract::State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let (lang, who) = match form_post(&console, &headers, Role::PrivacyOfficer, &form) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = lang.texts();
    let pairs: Vec<(String, String)> = form.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let params = match Params::parse(&pairs, EXPORT_FORM) {
        Ok(p) => p,
        Err(e) => return error_page(lang, StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let format = match params.get("format").map(ExportFormat::parse) {
        None => ExportFormat::Csv,
        Some(Some(f)) => f,
        Some(None) => return error_page(lang, StatusCode::BAD_REQUEST, t.bad_input),
    };
    let filter = match ReviewFilter::from_params(&params) {
        Ok(f) => f,
        Err(e) => return error_page(lang, StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let reader = match Reader::officer(who.claims()) {
        Ok(r) => officer_scope(r),
        Err(e) => return review_error(lang, e),
    };
    match export::begin(&state, &reader, &filter, format).await {
        Ok(export) => crate::http::audit_review::download(export, format),
        Err(e) => review_error(lang, e),
    }
}

#[derive(Template)]
#[template(path = "console/verify.html")]
struct VerifyPage {
    l: Layout,
    result: Option<VerifyResult>,
}

struct VerifyResult {
    ok: bool,
    records: u64,
    last_seq: String,
    head: String,
    checkpoints: u64,
    checkpoints_matched: u64,
    last_checkpoint_seq: String,
    unprotected_tail: u64,
    problem: String,
}

async fn verify_form(Extension(console): Extension<Arc<Console>>, headers: HeaderMap) -> Response {
    let (lang, who) = match with_role(&console, &headers, Role::PrivacyOfficer) {
        Ok(p) => p,
        Err(r) => return r,
    };
    render(
        StatusCode::OK,
        &VerifyPage {
            l: layout(lang, lang.texts().verify, Some(&who), Some(&console)),
            result: None,
        },
    )
}

/// "Verify now": the same verification as `GET /v1/audit/verify`, recorded as a read.
async fn verify(
    axum::extract::State(state): axum::extract::State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let (lang, who) = match form_post(&console, &headers, Role::PrivacyOfficer, &form) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let reader = Reader {
        org: Some(who.claims().org.clone()),
        person: who.claims().sub.clone(),
        scope: review::Scope::All,
    };
    if let Err(e) =
        review::record_read(&state, &reader, "audit-verify", None, Outcome::Permit).await
    {
        return review_error(lang, e);
    }
    let options = crate::audit::verify::VerifyOptions {
        allow_pruned_prefix: state.config.audit.retention_days.prunes(),
        expect_head: None,
        threads: 0,
    };
    let report = match state.audit.verify(&state.store, options).await {
        Ok(r) => r,
        Err(_) => return op_error(lang, OpError::Unavailable),
    };
    if let Ok(mut last) = console.last_verification.lock() {
        *last = Some((
            crate::timefmt::audit_time(chrono::Utc::now())
                .chars()
                .take(19)
                .collect::<String>()
                .replace('T', " "),
            report.ok,
        ));
    }
    let opt = |v: Option<i64>| v.map(|s| s.to_string()).unwrap_or_else(|| "—".into());
    render(
        StatusCode::OK,
        &VerifyPage {
            l: layout(lang, lang.texts().verify, Some(&who), Some(&console)),
            result: Some(VerifyResult {
                ok: report.ok,
                records: report.records,
                last_seq: opt(report.last_seq),
                head: report.head.map(|h| h.to_string()).unwrap_or_default(),
                checkpoints: report.checkpoints,
                checkpoints_matched: report.checkpoints_matched,
                last_checkpoint_seq: opt(report.last_checkpoint_seq),
                unprotected_tail: report.unprotected_tail,
                problem: report
                    .problem
                    .map(|p| format!("{} (seq {}): {}", p.kind.as_str(), p.seq, p.detail))
                    .unwrap_or_default(),
            }),
        },
    )
}

/// Days the overview covers, and at most this many records read for it.
const OVERVIEW_DAYS: i64 = 30;
const OVERVIEW_MAX_RECORDS: i64 = 50_000;

/// One day's bar of the chart (SVG coordinates computed here, drawn by the template).
struct Bar {
    x: i64,
    permit_y: i64,
    permit_h: i64,
    refuse_y: i64,
    refuse_h: i64,
    label: String,
    permits: u64,
    refusals: u64,
    tick: bool,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    l: Layout,
    bars: Vec<Bar>,
    max: u64,
    by_purpose: Vec<(String, u64, u64)>,
    by_reason: Vec<(String, u64)>,
    total: u64,
    capped: bool,
    head_seq: String,
    checkpoint: String,
    last_verification: Option<(String, bool)>,
}

/// The overview: decisions of the last 30 days per day and outcome (a server-drawn SVG chart),
/// per purpose, refusals by reason, and the chain's state. One meta-audit record for the read.
async fn overview(
    axum::extract::State(state): axum::extract::State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
) -> Response {
    use std::collections::BTreeMap;
    let (lang, who) = match with_role(&console, &headers, Role::PrivacyOfficer) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let reader = match Reader::officer(who.claims()) {
        Ok(r) => officer_scope(r),
        Err(e) => return review_error(lang, e),
    };
    let today = chrono::Utc::now().date_naive();
    let first = today - chrono::Duration::days(OVERVIEW_DAYS - 1);
    let filter = ReviewFilter {
        from: Some(crate::timefmt::audit_time(
            first.and_time(chrono::NaiveTime::MIN).and_utc(),
        )),
        ..ReviewFilter::default()
    };
    let what = format!("overview {}", filter.describe());
    if let Err(e) = review::record_read(&state, &reader, &what, None, Outcome::Permit).await {
        return review_error(lang, e);
    }
    let mut select = filter.select(&reader.scope, &state.pseudonymizer);
    let mut per_day: BTreeMap<chrono::NaiveDate, (u64, u64)> = BTreeMap::new();
    let mut by_purpose: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    let mut read = 0i64;
    let mut capped = false;
    loop {
        let batch = match state.store.audit_select(&select, 1000).await {
            Ok(b) => b,
            Err(e) => return op_error(lang, e.into()),
        };
        let Some(last) = batch.last() else { break };
        select.after = last.seq;
        for r in batch.iter().filter(|r| reader.scope.allows(&r.entry)) {
            let e = &r.entry;
            // Decisions between organisations; the console's own reads are left out.
            if matches!(e.kind, Some(crate::audit::entry::AuditKind::AuditRead)) {
                continue;
            }
            let Some(decision) = e.decision else { continue };
            let permit = decision == Outcome::Permit;
            let day = e
                .time
                .get(..10)
                .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            if let Some(day) = day {
                let c = per_day.entry(day).or_default();
                if permit {
                    c.0 += 1
                } else {
                    c.1 += 1
                }
            }
            let purpose = e.purpose.clone().unwrap_or_else(|| "—".into());
            let c = by_purpose.entry(purpose).or_default();
            if permit {
                c.0 += 1
            } else {
                c.1 += 1
            }
            if !permit {
                *by_reason
                    .entry(e.reason.clone().unwrap_or_else(|| "—".into()))
                    .or_default() += 1;
            }
        }
        read += batch.len() as i64;
        if read >= OVERVIEW_MAX_RECORDS {
            capped = true;
            break;
        }
    }
    let max = per_day.values().map(|(p, r)| p + r).max().unwrap_or(0);
    const HEIGHT: i64 = 160;
    let scale = |n: u64| -> i64 {
        if max == 0 {
            0
        } else {
            (n as i64 * HEIGHT) / max as i64
        }
    };
    let bars = (0..OVERVIEW_DAYS)
        .map(|i| {
            let day = first + chrono::Duration::days(i);
            let (p, r) = per_day.get(&day).copied().unwrap_or((0, 0));
            let (ph, rh) = (scale(p), scale(r));
            Bar {
                x: 40 + i * 20,
                permit_y: 10 + HEIGHT - ph,
                permit_h: ph,
                refuse_y: 10 + HEIGHT - ph - rh,
                refuse_h: rh,
                label: day.format("%d-%m").to_string(),
                permits: p,
                refusals: r,
                tick: i % 5 == 0 || i == OVERVIEW_DAYS - 1,
            }
        })
        .collect();
    let mut reasons: Vec<(String, u64)> = by_reason.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let head_seq = match state.store.audit_head().await {
        Ok(h) => h.map(|(s, _)| s.to_string()).unwrap_or_else(|| "—".into()),
        Err(e) => return op_error(lang, e.into()),
    };
    let checkpoint = match state.store.latest_checkpoint().await {
        Ok(c) => c
            .map(|c| {
                format!(
                    "#{} ({})",
                    c.seq,
                    c.time
                        .chars()
                        .take(19)
                        .collect::<String>()
                        .replace('T', " ")
                )
            })
            .unwrap_or_else(|| "—".into()),
        Err(e) => return op_error(lang, e.into()),
    };
    let last_verification = console
        .last_verification
        .lock()
        .ok()
        .and_then(|l| l.clone());
    let total = per_day.values().map(|(p, r)| p + r).sum();
    render(
        StatusCode::OK,
        &OverviewPage {
            l: layout(lang, lang.texts().overview, Some(&who), Some(&console)),
            bars,
            max,
            by_purpose: by_purpose
                .into_iter()
                .map(|(k, (p, r))| (k, p, r))
                .collect(),
            by_reason: reasons,
            total,
            capped,
            head_seq,
            checkpoint,
            last_verification,
        },
    )
}

// ---- covenant administrator ----

struct CovRow {
    id: String,
    title: String,
    region: String,
    state: String,
    latest: u32,
    in_force: String,
    valid_until: String,
    expires: Option<i64>,
    awaiting: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/covenants.html")]
struct CovenantsPage {
    l: Layout,
    rows: Vec<CovRow>,
    warning_days: u32,
}

fn state_name<T: serde::Serialize>(s: &T) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn covenants(
    axum::extract::State(state): axum::extract::State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
) -> Response {
    let (lang, who) = match with_role(&console, &headers, Role::CovenantAdmin) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let list = match views::list(&state).await {
        Ok(l) => l,
        Err(e) => return op_error(lang, e),
    };
    render(
        StatusCode::OK,
        &CovenantsPage {
            l: layout(lang, lang.texts().covenants, Some(&who), Some(&console)),
            warning_days: list.expiry_warning_days,
            rows: list
                .covenants
                .into_iter()
                .map(|c| CovRow {
                    id: c.id.to_string(),
                    title: c.title,
                    region: c.region,
                    state: state_name(&c.state),
                    latest: c.latest_version,
                    in_force: c
                        .in_force_version
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                    valid_until: c.valid_until.map(|d| d.to_string()).unwrap_or_default(),
                    expires: c.expires_within_days,
                    awaiting: c
                        .awaiting_signatures
                        .iter()
                        .map(|o| o.to_string())
                        .collect(),
                })
                .collect(),
        },
    )
}

struct PartyRow {
    name: String,
    oin: String,
    role: String,
    status: &'static str,
    signed: bool,
    signed_at: String,
}

struct GrantRow {
    purpose: String,
    source: String,
    recipients: Vec<String>,
    fields: Vec<(String, String)>,
    legal_basis: String,
    basis_text: String,
    consent_required: bool,
    retention_days: u32,
}

struct VersionRow {
    version: u32,
    reference: String,
    state: String,
    in_force: bool,
    valid_from: String,
    valid_until: String,
    expires: Option<i64>,
    parties: Vec<PartyRow>,
    grants: Vec<GrantRow>,
    changes: Option<Vec<String>>,
}

#[derive(Template)]
#[template(path = "console/covenant.html")]
struct CovenantPage {
    l: Layout,
    id: String,
    state: String,
    versions: Vec<VersionRow>,
    message: Option<String>,
    problem: Option<String>,
}

fn name_of(v: &VersionView, oin: &policy::Oin) -> String {
    v.parties
        .iter()
        .find(|p| &p.oin == oin)
        .map_or_else(|| oin.to_string(), |p| format!("{} ({oin})", p.name))
}

fn version_row(
    t: &Texts,
    state: &AppState,
    v: &VersionView,
    prev: Option<&VersionView>,
) -> VersionRow {
    let catalogue = state.covenants();
    let catalogue = catalogue.catalogue();
    VersionRow {
        version: v.version,
        reference: v.reference.clone(),
        state: state_name(&v.state),
        in_force: v.in_force,
        valid_from: v.valid_from.to_string(),
        valid_until: v.valid_until.to_string(),
        expires: v.expires_within_days,
        parties: v
            .parties
            .iter()
            .map(|p| PartyRow {
                name: p.name.clone(),
                oin: p.oin.to_string(),
                role: state_name(&p.role),
                status: match p.signature {
                    SignatureStatus::Signed => t.signed,
                    SignatureStatus::Missing => t.missing,
                    SignatureStatus::Invalid => t.invalid,
                },
                signed: p.signature == SignatureStatus::Signed,
                signed_at: p.signed_at.clone().unwrap_or_default(),
            })
            .collect(),
        grants: v
            .document
            .grants
            .iter()
            .map(|g| GrantRow {
                purpose: g.purpose.to_string(),
                source: name_of(v, &g.source),
                recipients: g.recipients.iter().map(|r| name_of(v, r)).collect(),
                fields: g
                    .fields
                    .iter()
                    .map(|f| {
                        let d = catalogue
                            .get(f)
                            .map(|s| s.description.clone())
                            .unwrap_or_default();
                        (f.to_string(), d)
                    })
                    .collect(),
                legal_basis: state_name(&g.legal_basis),
                basis_text: g.basis_text.clone(),
                consent_required: g.consent_required,
                retention_days: g.retention_days,
            })
            .collect(),
        changes: prev.map(|p| {
            let d = crate::covenant_diff::diff(&p.document, &v.document);
            d.to_string()
                .lines()
                .map(str::to_owned)
                .filter(|l| !l.trim().is_empty())
                .collect()
        }),
    }
}

async fn covenant_page(
    state: &AppState,
    console: &Console,
    lang: Lang,
    who: &Who,
    id: &str,
    message: Option<String>,
    problem: Option<String>,
) -> Response {
    let t = lang.texts();
    let view = match views::show(state, id).await {
        Ok(v) => v,
        Err(e) => return op_error(lang, e),
    };
    let mut versions: Vec<VersionRow> = Vec::new();
    let mut sorted: Vec<&VersionView> = view.versions.iter().collect();
    sorted.sort_by_key(|v| v.version);
    for (i, v) in sorted.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| sorted[j]);
        versions.push(version_row(t, state, v, prev));
    }
    versions.reverse();
    let status = if problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(
        status,
        &CovenantPage {
            l: layout(lang, &view.title, Some(who), Some(console)),
            id: view.id.to_string(),
            state: state_name(&view.state),
            versions,
            message,
            problem,
        },
    )
}

async fn covenant(
    axum::extract::State(state): axum::extract::State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (lang, who) = match with_role(&console, &headers, Role::CovenantAdmin) {
        Ok(p) => p,
        Err(r) => return r,
    };
    covenant_page(&state, &console, lang, &who, &id, None, None).await
}

#[derive(Template)]
#[template(path = "console/draft.html")]
struct DraftPage {
    l: Layout,
    document: String,
    problems: Vec<(String, String)>,
    problem: Option<String>,
}

async fn draft_form(Extension(console): Extension<Arc<Console>>, headers: HeaderMap) -> Response {
    let (lang, who) = match with_role(&console, &headers, Role::CovenantAdmin) {
        Ok(p) => p,
        Err(r) => return r,
    };
    render(
        StatusCode::OK,
        &DraftPage {
            l: layout(lang, lang.texts().upload_draft, Some(&who), Some(&console)),
            document: String::new(),
            problems: Vec::new(),
            problem: None,
        },
    )
}

/// A draft or amendment: `acts::create`, as `POST /v1/covenants`; validation problems are
/// listed at their path in the document, and the document stays in the form.
async fn draft(
    axum::extract::State(state): axum::extract::State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let (lang, who) = match form_post(&console, &headers, Role::CovenantAdmin, &form) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let document = Fields(&form).get("document").unwrap_or("").to_owned();
    match acts::create(&state, &Actor::from(who.claims()), document.as_bytes()).await {
        Ok(v) => {
            let id = v.covenant_id.to_string();
            covenant_page(
                &state,
                &console,
                lang,
                &who,
                &id,
                Some(lang.texts().done.to_owned()),
                None,
            )
            .await
        }
        Err(OpError::InvalidCovenant(problems)) => render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &DraftPage {
                l: layout(lang, lang.texts().upload_draft, Some(&who), Some(&console)),
                document,
                problems: problems.into_iter().map(|p| (p.path, p.message)).collect(),
                problem: None,
            },
        ),
        Err(
            e @ (OpError::Unavailable
            | OpError::AuditUnavailable
            | OpError::Internal
            | OpError::Forbidden),
        ) => op_error(lang, e),
        Err(e) => render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &DraftPage {
                l: layout(lang, lang.texts().upload_draft, Some(&who), Some(&console)),
                document,
                problems: Vec::new(),
                problem: Some(e.to_string()),
            },
        ),
    }
}

async fn sign(
    axum::extract::State(state): axum::extract::State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    Path((id, version)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let (lang, who) = match form_post(&console, &headers, Role::CovenantAdmin, &form) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let jws = Fields(&form)
        .get("signature")
        .unwrap_or("")
        .trim()
        .to_owned();
    match acts::sign(&state, &Actor::from(who.claims()), &id, &version, &jws).await {
        Ok(_) => {
            let done = Some(lang.texts().done.to_owned());
            covenant_page(&state, &console, lang, &who, &id, done, None).await
        }
        Err(e @ (OpError::Unavailable | OpError::AuditUnavailable | OpError::Internal)) => {
            op_error(lang, e)
        }
        Err(e) => covenant_page(&state, &console, lang, &who, &id, None, Some(e.to_string())).await,
    }
}

fn transition_of(act: &str) -> Option<Transition> {
    match act {
        "suspend" => Some(Transition::Suspend),
        "resume" => Some(Transition::Resume),
        "terminate" => Some(Transition::Terminate),
        _ => None,
    }
}

#[derive(Template)]
#[template(path = "console/confirm.html")]
struct ConfirmPage {
    l: Layout,
    id: String,
    act: String,
    act_label: String,
    problem: Option<String>,
}

fn act_label(t: &Texts, tr: Transition) -> &'static str {
    match tr {
        Transition::Suspend => t.suspend,
        Transition::Resume => t.resume,
        Transition::Terminate => t.terminate,
    }
}

/// The confirmation step of suspend, resume and terminate: a form with a required reason.
async fn act_form(
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    Path((id, act)): Path<(String, String)>,
) -> Response {
    let (lang, who) = match with_role(&console, &headers, Role::CovenantAdmin) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(tr) = transition_of(&act) else {
        return error_page(lang, StatusCode::NOT_FOUND, lang.texts().not_found);
    };
    let label = act_label(lang.texts(), tr);
    render(
        StatusCode::OK,
        &ConfirmPage {
            l: layout(lang, label, Some(&who), Some(&console)),
            id,
            act,
            act_label: label.to_owned(),
            problem: None,
        },
    )
}

async fn act(
    axum::extract::State(state): axum::extract::State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    headers: HeaderMap,
    Path((id, act)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let (lang, who) = match form_post(&console, &headers, Role::CovenantAdmin, &form) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = lang.texts();
    let Some(tr) = transition_of(&act) else {
        return error_page(lang, StatusCode::NOT_FOUND, t.not_found);
    };
    let f = Fields(&form);
    let reason = f.get("reason").map(str::trim).unwrap_or("");
    if reason.is_empty() || f.get("confirm") != Some("yes") {
        let label = act_label(t, tr);
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ConfirmPage {
                l: layout(lang, label, Some(&who), Some(&console)),
                id,
                act,
                act_label: label.to_owned(),
                problem: Some(t.act_why.to_owned()),
            },
        );
    }
    match acts::transition(&state, &Actor::from(who.claims()), &id, tr).await {
        Ok(_) => {
            tracing::info!(act = tr.as_str(), "covenant act from the console");
            let done = Some(format!("{} {}", t.done, reason));
            covenant_page(&state, &console, lang, &who, &id, done, None).await
        }
        Err(e @ (OpError::Unavailable | OpError::AuditUnavailable | OpError::Internal)) => {
            op_error(lang, e)
        }
        Err(e) => covenant_page(&state, &console, lang, &who, &id, None, Some(e.to_string())).await,
    }
}
