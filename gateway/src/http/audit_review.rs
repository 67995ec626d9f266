//! The privacy officer's endpoints: `GET /v1/audit/records` (filtered, cursor pages) and
//! `POST /v1/audit/records/search` (the same with the filter in the body, where a subject may be
//! named), `POST /v1/audit/subject-reports` (the data-subject report, JSON or HTML) and
//! `GET`/`POST /v1/audit/export` (CSV or JSON Lines, streamed). A subject's BSN travels only in a
//! request body, never in a path or query (proxies and browsers record URLs). Thin: token → role
//! → parameters → the function in `audit::` that records the read and does it.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::api::SubjectRef;
use crate::audit::export::{self, ExportFormat};
use crate::audit::report::{self, Lang};
use crate::audit::review::{self, PageRequest, Params, Reader, ReviewError, ReviewFilter};
use crate::auth::HumanClaims;
use crate::http::problem::{bearer, ApiError};
use crate::http::{parse_json, query_pairs, QueryPairs};
use crate::state::AppState;

impl From<ReviewError> for ApiError {
    fn from(e: ReviewError) -> ApiError {
        ApiError::Op(e.into())
    }
}

/// The query parameters of `GET /v1/audit/records`: the filter (no subject) and the page.
pub const RECORDS_QUERY: &[&str] = &[
    "from", "to", "purpose", "org", "decision", "reason", "kind", "cursor", "limit",
];
/// The query parameters of `GET /v1/audit/export`: the filter (no subject) and the format.
pub const EXPORT_QUERY: &[&str] = &[
    "from", "to", "purpose", "org", "decision", "reason", "kind", "format",
];

/// The routes, merged into the v1 router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/audit/records", get(records))
        .route("/v1/audit/records/search", post(search_records))
        .route("/v1/audit/subject-reports", post(subject_report))
        .route("/v1/audit/export", get(export_log).post(export_log_by_body))
        .route("/v1/audit/usage-reports", get(usage_report))
}

/// The body of `POST /v1/audit/records/search` and `POST /v1/audit/export`: the parameters of
/// the GET forms, and the subject, whose BSN may travel only in a body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    #[serde(default)]
    subject: Option<SubjectRef>,
    /// Issue 16: only the records of this employee (the verified actor's pseudonymous `sub`).
    /// Like the subject, only in a body: an employee id is no URL material either.
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    purpose: Option<String>,
    #[serde(default)]
    org: Option<String>,
    #[serde(default)]
    decision: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    format: Option<String>,
}

impl ReviewBody {
    /// The members other than the subject as name/value pairs, checked like a query string.
    fn pairs(&self) -> Vec<(String, String)> {
        let members = [
            ("from", self.from.clone()),
            ("to", self.to.clone()),
            ("purpose", self.purpose.clone()),
            ("org", self.org.clone()),
            ("decision", self.decision.clone()),
            ("reason", self.reason.clone()),
            ("kind", self.kind.clone()),
            ("cursor", self.cursor.clone()),
            ("limit", self.limit.map(|l| l.to_string())),
            ("format", self.format.clone()),
        ];
        members
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect()
    }
}

/// A POST endpoint takes its parameters in the body; a query string is refused.
fn no_query(query: QueryPairs) -> Result<(), ApiError> {
    let pairs = query_pairs(query)?;
    if pairs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::malformed(
            "this endpoint takes no query parameters: give them in the JSON body",
        ))
    }
}

/// Verify the bearer token and apply the access rule; a person with a valid token but without
/// the role leaves a refused meta-audit record.
async fn reader(state: &AppState, headers: &HeaderMap, what: &str) -> Result<Reader, ApiError> {
    let claims: HumanClaims = bearer(&state.humans, headers)?;
    match Reader::officer(&claims) {
        Ok(r) => Ok(r),
        Err(_) => Err(review::refuse(state, &claims, what).await.into()),
    }
}

/// Personal data: not to be kept by caches or sent on as a referrer.
fn private(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// One page of the records `reader` may see, selected by `pairs` (filter and page) and
/// `subject`.
async fn list_page(
    state: &AppState,
    reader: &Reader,
    pairs: &[(String, String)],
    subject: Option<SubjectRef>,
    actor: Option<&str>,
) -> Result<Response, ApiError> {
    let params = Params::parse(pairs, RECORDS_QUERY)?;
    let mut filter = ReviewFilter::from_params(&params)?;
    filter.subject = subject.map(|s| s.bsn);
    filter.actor = actor.map(review::parse_actor).transpose()?;
    let page = PageRequest::from_params(&params)?;
    let page = review::list(state, reader, &filter, page).await?;
    Ok(private(Json(page).into_response()))
}

async fn records(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let reader = reader(&state, &headers, "records").await?;
    let pairs = query_pairs(query)?;
    list_page(&state, &reader, &pairs, None, None).await
}

async fn search_records(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryPairs,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let reader = reader(&state, &headers, "records").await?;
    no_query(query)?;
    let body: ReviewBody = parse_json(body)?;
    list_page(
        &state,
        &reader,
        &body.pairs(),
        body.subject,
        body.actor.as_deref(),
    )
    .await
}

/// HTML when `format` is `html`, or without `format` when the client prefers `text/html` to JSON.
fn wants_html(format: Option<&str>, headers: &HeaderMap) -> Result<bool, ApiError> {
    match format {
        Some("html") => Ok(true),
        Some("json") => Ok(false),
        Some(_) => Err(ApiError::malformed("`format`: json or html")),
        None => {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            Ok(match (accept.find("text/html"), accept.find("json")) {
                (Some(h), Some(j)) => h < j,
                (Some(_), None) => true,
                _ => false,
            })
        }
    }
}

/// The body of `POST /v1/audit/subject-reports`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectReportBody {
    subject: SubjectRef,
    /// `json` or `html`; without it, the `Accept` header decides.
    #[serde(default)]
    format: Option<String>,
    /// The language of the HTML document: `nl` (default) or `en`.
    #[serde(default)]
    lang: Option<String>,
}

async fn subject_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryPairs,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let reader = reader(&state, &headers, "subject-report").await?;
    no_query(query)?;
    let body: SubjectReportBody = parse_json(body)?;
    let html = wants_html(body.format.as_deref(), &headers)?;
    let lang = match body.lang.as_deref() {
        None => Lang::default(),
        Some(l) => Lang::parse(l).ok_or_else(|| ApiError::malformed("`lang`: nl or en"))?,
    };
    let report = report::build(&state, &reader, &body.subject.bsn).await?;
    if !html {
        return Ok(private(Json(report).into_response()));
    }
    let mut resp = (StatusCode::OK, report::render_html(&report, lang)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    Ok(private(resp))
}

async fn export_log(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let reader = reader(&state, &headers, "export").await?;
    let pairs = query_pairs(query)?;
    export_response(&state, &reader, &pairs, None, None).await
}

async fn export_log_by_body(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryPairs,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let reader = reader(&state, &headers, "export").await?;
    no_query(query)?;
    let body: ReviewBody = parse_json(body)?;
    export_response(
        &state,
        &reader,
        &body.pairs(),
        body.subject,
        body.actor.as_deref(),
    )
    .await
}

/// The export of the records `reader` may see, selected by `pairs` (filter and format) and
/// `subject`, streamed.
async fn export_response(
    state: &AppState,
    reader: &Reader,
    pairs: &[(String, String)],
    subject: Option<SubjectRef>,
    actor: Option<&str>,
) -> Result<Response, ApiError> {
    let params = Params::parse(pairs, EXPORT_QUERY)?;
    let format = match params.get("format") {
        None => ExportFormat::Jsonl,
        Some(f) => {
            ExportFormat::parse(f).ok_or_else(|| ApiError::malformed("`format`: csv or jsonl"))?
        }
    };
    let mut filter = ReviewFilter::from_params(&params)?;
    filter.subject = subject.map(|s| s.bsn);
    filter.actor = actor.map(review::parse_actor).transpose()?;
    let export = export::begin(state, reader, &filter, format).await?;
    Ok(private(download(export, format)))
}

/// An export as a download: streamed, with its file name and the last record it covers
/// (`x-audit-through-seq`). The API and the console's export page both answer with it.
pub fn download(export: export::Export, format: ExportFormat) -> Response {
    let through = export.through;
    let stream = futures_util::StreamExt::map(export.into_stream(), |chunk| {
        chunk.map_err(|e| {
            tracing::error!(error = %e, "audit export stopped: the audit log cannot be read");
            std::io::Error::other("the audit log cannot be read")
        })
    });
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    let name = format!(
        "attachment; filename=\"audit-export-{through}.{}\"",
        format.as_str()
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-audit-through-seq", HeaderValue::from(through));
    resp
}

// --- issue 16: the usage review ---

/// The query parameters of `GET /v1/audit/usage-reports`.
pub const USAGE_QUERY: &[&str] = &["from", "to", "format"];

/// `GET /v1/audit/usage-reports?from=YYYY-MM-DD&to=YYYY-MM-DD&format=json|csv|html`: per employee
/// and day (Europe/Amsterdam), the officer's own organisation's disclosure requests, with
/// signals. The read is audited first. Employee ids are in the answer, never in the URL.
async fn usage_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    use crate::audit::usage;
    let reader = reader(&state, &headers, "usage-report").await?;
    let pairs = query_pairs(query)?;
    let params = Params::parse(&pairs, USAGE_QUERY)?;
    let date = |name: &'static str| -> Result<chrono::NaiveDate, ApiError> {
        let v = params
            .get(name)
            .ok_or_else(|| ApiError::malformed(format!("`{name}`: a date such as 2026-11-25")))?;
        chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| ApiError::malformed(format!("`{name}`: a date such as 2026-11-25")))
    };
    let (from, to) = (date("from")?, date("to")?);
    if usage::check_period(from, to).is_err() {
        return Err(ApiError::malformed(
            "`to`: on or after `from`, and at most 92 days in all",
        ));
    }
    let format = params.get("format").unwrap_or("json");
    if !matches!(format, "json" | "csv" | "html") {
        return Err(ApiError::malformed("`format`: json, csv or html"));
    }
    // An officer's report is of their own organisation.
    let Some(own) = reader.org.clone() else {
        return Err(ReviewError::Forbidden.into());
    };
    let rows = usage::build(&state, &reader, &own, from, to).await?;
    let org = own.to_string();
    let (content_type, body) = match format {
        "csv" => ("text/csv; charset=utf-8", usage::csv(&rows)),
        "html" => (
            "text/html; charset=utf-8",
            usage::html(&rows, &org, from, to, &state.config.usage_review),
        ),
        _ => {
            return Ok(private(
                Json(serde_json::json!({
                    "organisation": org,
                    "from": from,
                    "to": to,
                    "rows": rows,
                }))
                .into_response(),
            ))
        }
    };
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    Ok(private(resp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_chosen_by_format_or_by_accept_preference() {
        let mut h = HeaderMap::new();
        assert!(!wants_html(None, &h).unwrap());
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        assert!(wants_html(None, &h).unwrap());
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/html"),
        );
        assert!(!wants_html(None, &h).unwrap());
        assert!(wants_html(Some("html"), &h).unwrap());
        assert!(!wants_html(Some("json"), &HeaderMap::new()).unwrap());
        assert!(wants_html(Some("pdf"), &h).is_err());
    }
}
