//! The privacy officer's endpoints: `GET /v1/audit/records` (filtered, cursor pages),
//! `GET /v1/audit/subjects/{bsn}` (the data-subject report, JSON or HTML) and
//! `GET /v1/audit/export` (CSV or JSON Lines, streamed). Thin: token → role → parameters → the
//! function in `audit::` that records the read and does it. Never logs a path or query: they may
//! hold a BSN.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use policy::Bsn;

use crate::audit::export::{self, ExportFormat};
use crate::audit::report::{self, Lang};
use crate::audit::review::{self, PageRequest, Params, Reader, ReviewError, ReviewFilter};
use crate::auth::HumanClaims;
use crate::http::problem::{bearer, ApiError};
use crate::ops::error::OpError;
use crate::state::AppState;

impl From<ReviewError> for ApiError {
    fn from(e: ReviewError) -> ApiError {
        ApiError::Op(e.into())
    }
}

/// The routes, merged into the v1 router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/audit/records", get(records))
        .route("/v1/audit/subjects/{bsn}", get(subject_report))
        .route("/v1/audit/export", get(export_log))
}

type RawQuery = Result<Query<Vec<(String, String)>>, QueryRejection>;

fn pairs(query: RawQuery) -> Result<Vec<(String, String)>, ApiError> {
    query
        .map(|Query(p)| p)
        .map_err(|_| ApiError::malformed("the query string is not well-formed"))
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

async fn records(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: RawQuery,
) -> Result<Response, ApiError> {
    let reader = reader(&state, &headers, "records").await?;
    let pairs = pairs(query)?;
    let mut allowed = review::FILTER_PARAMS.to_vec();
    allowed.extend(["cursor", "limit"]);
    let params = Params::parse(&pairs, &allowed)?;
    let filter = ReviewFilter::from_params(&params)?;
    let page = PageRequest::from_params(&params)?;
    let page = review::list(&state, &reader, &filter, page).await?;
    Ok(private(Json(page).into_response()))
}

/// HTML when `format=html`, or without `format` when the client prefers `text/html` to JSON.
fn wants_html(format: Option<&str>, headers: &HeaderMap) -> Result<bool, ApiError> {
    match format {
        Some("html") => Ok(true),
        Some("json") => Ok(false),
        Some(_) => Err(ApiError::malformed(
            "query parameter `format`: json or html",
        )),
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

async fn subject_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(bsn): Path<String>,
    query: RawQuery,
) -> Result<Response, ApiError> {
    let reader = reader(&state, &headers, "subject-report").await?;
    let bsn: Bsn = bsn.parse().map_err(|_| ApiError::Op(OpError::InvalidBsn))?;
    let pairs = pairs(query)?;
    let params = Params::parse(&pairs, &["format", "lang"])?;
    let html = wants_html(params.get("format"), &headers)?;
    let lang = match params.get("lang") {
        None => Lang::default(),
        Some(l) => {
            Lang::parse(l).ok_or_else(|| ApiError::malformed("query parameter `lang`: nl or en"))?
        }
    };
    let report = report::build(&state, &reader, &bsn).await?;
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
    query: RawQuery,
) -> Result<Response, ApiError> {
    let reader = reader(&state, &headers, "export").await?;
    let pairs = pairs(query)?;
    let mut allowed = review::FILTER_PARAMS.to_vec();
    allowed.push("format");
    let params = Params::parse(&pairs, &allowed)?;
    let format = match params.get("format") {
        None => ExportFormat::Jsonl,
        Some(f) => ExportFormat::parse(f)
            .ok_or_else(|| ApiError::malformed("query parameter `format`: csv or jsonl"))?,
    };
    let filter = ReviewFilter::from_params(&params)?;
    let export = export::begin(&state, &reader, &filter, format).await?;
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
