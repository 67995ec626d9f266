//! HTTP layer: the router and thin handlers (extract → call the function that owns the logic →
//! map the result), the caller's identity from its TLS certificate, and problem details.

pub mod audit_review;
pub mod audit_verify;
mod body_limit;
pub mod covenants;
pub mod problem;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use policy::Oin;
use serde::de::DeserializeOwned;

use crate::metrics::Gauge;
use crate::ops::error::OpError;
use crate::state::AppState;
use problem::ApiError;

/// Who is on the other end of the TLS connection, set once per connection by the server.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// The OIN from the client certificate, if a certificate was presented and carried one.
    pub oin: Option<Oin>,
    /// Whether a client certificate was presented at all.
    pub presented_certificate: bool,
}

impl Peer {
    /// The calling organisation, for system endpoints: refuses without a certificate or with an
    /// organisation this gateway does not know.
    pub fn organisation(&self, state: &AppState) -> Result<Oin, ApiError> {
        let span = tracing::info_span!("peer_identity", organisation = tracing::field::Empty);
        let _entered = span.enter();
        if !self.presented_certificate {
            return Err(ApiError::NoClientCertificate);
        }
        match &self.oin {
            Some(oin) if state.knows(oin) => {
                span.record("organisation", oin.as_str());
                if !state.rate_limiter.allow(oin) {
                    return Err(ApiError::RateLimited);
                }
                Ok(oin.clone())
            }
            _ => Err(ApiError::UnknownOrganisation),
        }
    }
}

/// The query string as name/value pairs: the only way a handler reads a query.
type QueryPairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The query parameters each route reads (method, route template, names), and no others: a
/// request naming another is refused. None names a person: a subject's BSN travels only in a
/// request body, because proxies, ingresses and browsers record URLs. The contract tests compare
/// this list with the OpenAPI description and check every name.
pub const QUERY_PARAMETERS: [(&str, &str, &[&str]); 4] = [
    ("GET", "/v1/audit/records", audit_review::RECORDS_QUERY),
    ("GET", "/v1/audit/export", audit_review::EXPORT_QUERY),
    ("GET", "/v1/audit/verify", audit_verify::VERIFY_QUERY),
    // Issue 16: the usage review (dates and a format only; employee ids never in a URL).
    ("GET", "/v1/audit/usage-reports", audit_review::USAGE_QUERY),
];

/// The pairs of a query string; a string that does not parse is refused without echo.
fn query_pairs(query: QueryPairs) -> Result<Vec<(String, String)>, ApiError> {
    query
        .map(|Query(p)| p)
        .map_err(|_| ApiError::malformed("the query string is not well-formed"))
}

/// The request body, or `payload-too-large` when it went past `limits.max_body_bytes` while it
/// was read (a body without a declared length; a declared one is refused before it is read).
pub(super) fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::malformed("the request body could not be read")
        }
    })
}

/// Parse a JSON body; errors name the path and the problem, never the offending value.
fn parse_json<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = read_body(body)?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.starts_with("subject.bsn") || path == "subject" && inner.to_string().contains("BSN")
        {
            return ApiError::Op(OpError::InvalidBsn);
        }
        // serde_json's message may quote the input; keep only its category and location.
        let what = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "is not well-formed JSON".to_owned()
            }
            _ => {
                let msg = inner.to_string();
                if msg.contains("unknown field") {
                    "has an unknown member".to_owned()
                } else if msg.contains("missing field") {
                    msg.split(" at line").next().unwrap_or("").to_owned()
                } else {
                    "has a value of the wrong type or form".to_owned()
                }
            }
        };
        ApiError::malformed(format!("request body at `{path}` {what}"))
    })
}

/// Issue 16: the `Actor-Token` header, when sent. Sent more than once or not text, it is passed
/// on empty, so that the use-case refuses (and audits) it as malformed.
fn actor_token(headers: &HeaderMap) -> Option<String> {
    let mut values = headers.get_all(crate::actor::ACTOR_HEADER).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return Some(String::new());
    }
    Some(first.to_str().map(str::to_owned).unwrap_or_default())
}

async fn disclosures(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let requester = peer.organisation(&state)?;
    let request = parse_json(body)?;
    let response = crate::ops::disclose::disclose(
        &state,
        requester,
        request,
        actor_token(&headers).as_deref(),
        crate::telemetry::current_trace_ids(),
    )
    .await?;
    Ok((StatusCode::OK, Json(response)).into_response())
}

async fn store_handover(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let source = peer.organisation(&state)?;
    let body = parse_json(body)?;
    let stored = crate::ops::handover::put(
        &state,
        source,
        body,
        actor_token(&headers).as_deref(),
        crate::telemetry::current_trace_ids(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    token: String,
}

async fn register_consent(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let issuer = peer.organisation(&state)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let token = if is_json {
        parse_json::<TokenBody>(body)?.token
    } else {
        let bytes = read_body(body)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::malformed("the token is not UTF-8 text"))?
    };
    let registered = crate::ops::consent::register(
        &state,
        issuer,
        &token,
        actor_token(&headers).as_deref(),
        crate::telemetry::current_trace_ids(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(registered)).into_response())
}

async fn revoke_consent(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let issuer = peer.organisation(&state)?;
    let revoked = crate::ops::consent::revoke(
        &state,
        issuer,
        &id,
        actor_token(&headers).as_deref(),
        crate::telemetry::current_trace_ids(),
    )
    .await?;
    Ok((StatusCode::OK, Json(revoked)).into_response())
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the audit writer runs, its last write succeeded and the database answers: without
/// them every act would be refused (fail closed), so a load balancer should route elsewhere. The
/// ping waits at most `database.acquire_timeout_ms` for a connection. While the database fails,
/// the probes keep its log lines going (one per interval) and end them when it answers again.
async fn readyz(State(state): State<AppState>) -> Response {
    use crate::ops::error::DATABASE_FAILURES;
    if !state.audit.is_alive() {
        return (StatusCode::SERVICE_UNAVAILABLE, "audit writer stopped").into_response();
    }
    if !state.audit.is_writable() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "audit log cannot be written",
        )
            .into_response();
    }
    match state.store.ping().await {
        Ok(()) => {
            DATABASE_FAILURES.succeeded();
            (StatusCode::OK, "ready").into_response()
        }
        Err(e) => {
            DATABASE_FAILURES.failed(&e);
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// Prometheus text: decisions, latencies, the audit writer, and covenants in force with days
/// until they expire (all rendered by `metrics`).
async fn metrics(State(state): State<AppState>) -> Response {
    use crate::ops::covenants::views::{days_until_expiry, expiry_warnings, DaysLeft};
    let today = chrono::Utc::now().date_naive();
    let samples = |list: Vec<DaysLeft>| {
        list.into_iter()
            .map(|d| {
                let labels = vec![
                    ("covenant", d.covenant.to_string()),
                    ("version", d.version.to_string()),
                ];
                (labels, d.days)
            })
            .collect()
    };
    let (window, warned) = expiry_warnings(&state, today);
    let gauges = [
        Gauge {
            name: "poortwachter_covenant_days_until_expiry",
            help: "Days until a covenant version in force expires.",
            samples: samples(days_until_expiry(&state.covenants(), today)),
        },
        Gauge {
            name: "poortwachter_covenant_expiry_warning_days",
            help: "Covenants in force that end within this many days are warned about.",
            samples: vec![(Vec::new(), i64::from(window))],
        },
        Gauge {
            name: "poortwachter_covenant_expiring",
            help: "Days until the version in force of a covenant ends, for covenants ending within the warning window.",
            samples: samples(warned),
        },
        Gauge {
            name: "poortwachter_audit_writable",
            help: "1 while the audit writer's last write succeeded; 0 from a failed commit until \
                   the database takes writes again (every act is refused meanwhile).",
            samples: vec![(Vec::new(), i64::from(state.audit.is_writable()))],
        },
    ];
    let mut text = state.metrics.render(&gauges);
    // Live disclosure (issue 18): breaker state and calls per source.
    state.sources.render_metrics(&mut text);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn not_found() -> ApiError {
    OpError::NotFound.into()
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Refuse (fail closed) when a request takes longer than the configured limit.
async fn request_timeout(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let limit = std::time::Duration::from_millis(state.config.limits.request_timeout_ms);
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// One span per request, named by the route template (never the raw path: it may hold a BSN),
/// and the latency metric.
async fn observe(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use tracing::Instrument;
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let endpoint = format!("{} {route}", req.method());
    let span = tracing::info_span!(
        crate::telemetry::REQUEST_SPAN,
        endpoint = %endpoint,
        status = tracing::field::Empty,
        reason = tracing::field::Empty
    );
    let started = std::time::Instant::now();
    // W3C Trace Context: continue the caller's trace (Logboek Dataverwerkingen, foreign operation).
    let caller = crate::telemetry::caller_context(req.headers());
    let resp = crate::telemetry::continue_caller_trace(
        &span,
        caller,
        next.run(req).instrument(span.clone()),
    )
    .await;
    span.record("status", resp.status().as_u16());
    if let Some(reason) = resp.extensions().get::<problem::Reason>() {
        span.record("reason", reason.0);
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
            state.metrics.unavailable(reason.0);
        }
    }
    state
        .metrics
        .latency(&endpoint, started.elapsed().as_secs_f64());
    resp
}

/// The v1 router.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.limits.max_body_bytes;
    Router::new()
        .route("/v1/consents", post(register_consent))
        .route("/v1/consents/{id}/revoke", post(revoke_consent))
        .route("/v1/handovers", post(store_handover))
        .route("/v1/disclosures", post(disclosures))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(covenants::routes())
        .merge(audit_review::routes())
        .merge(audit_verify::routes())
        .merge(crate::console::routes(&state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            body_limit::refuse_declared_oversize,
        ))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}
