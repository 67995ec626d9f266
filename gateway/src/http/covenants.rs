//! Covenant administration endpoints (`covenant-admin` bearer token): thin handlers over
//! `covenant_admin`, and the one place its errors become statuses and stable reasons.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::auth::Role;
use crate::covenant_admin::{self, Actor, AdminError, Transition};
use crate::state::AppState;

use super::problem::{ApiError, Reason};

/// The covenant administration routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/covenants", post(create).get(list))
        .route("/v1/covenants/{id}", get(show))
        .route("/v1/covenants/{id}/versions/{version}", get(show_version))
        .route(
            "/v1/covenants/{id}/versions/{version}/signatures",
            post(sign),
        )
        .route("/v1/covenants/{id}/suspend", post(suspend))
        .route("/v1/covenants/{id}/resume", post(resume))
        .route("/v1/covenants/{id}/terminate", post(terminate))
}

/// The caller must carry a valid bearer token with the `covenant-admin` role.
fn admin(state: &AppState, headers: &HeaderMap) -> Result<Actor, AdminError> {
    let claims = state.humans.verify_headers(headers)?;
    claims.require(Role::CovenantAdmin)?;
    Ok(Actor::from(&claims))
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, AdminError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge.into()
        } else {
            ApiError::Malformed("the request body could not be read".into()).into()
        }
    })
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AdminError> {
    let actor = admin(&state, &headers)?;
    let body = body_bytes(body)?;
    let view = covenant_admin::create(&state, &actor, &body).await?;
    let location = format!("/v1/covenants/{}", view.covenant_id);
    let mut resp = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AdminError> {
    admin(&state, &headers)?;
    Ok(Json(covenant_admin::list(&state).await?).into_response())
}

async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    admin(&state, &headers)?;
    Ok(Json(covenant_admin::show(&state, &id).await?).into_response())
}

async fn show_version(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, version)): Path<(String, String)>,
) -> Result<Response, AdminError> {
    admin(&state, &headers)?;
    Ok(Json(covenant_admin::show_version(&state, &id, &version).await?).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureBody {
    /// The detached compact JWS (`header..signature`).
    jws: String,
}

async fn sign(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, version)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AdminError> {
    let actor = admin(&state, &headers)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let jws = if is_json {
        super::parse_json::<SignatureBody>(body)?.jws
    } else {
        let bytes = body_bytes(body)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::Malformed("the signature is not UTF-8 text".into()))?
    };
    let signed = covenant_admin::sign(&state, &actor, &id, &version, &jws).await?;
    let status = if signed.replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(signed.version)).into_response())
}

async fn act(
    state: AppState,
    headers: HeaderMap,
    id: String,
    t: Transition,
) -> Result<Response, AdminError> {
    let actor = admin(&state, &headers)?;
    Ok(Json(covenant_admin::transition(&state, &actor, &id, t).await?).into_response())
}

async fn suspend(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    act(state, headers, id, Transition::Suspend).await
}

async fn resume(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    act(state, headers, id, Transition::Resume).await
}

async fn terminate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    act(state, headers, id, Transition::Terminate).await
}

/// Problem details of a refused administrative act (same shape as `ApiError`'s).
#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    type_: String,
    title: &'a str,
    status: u16,
    detail: String,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    problems: Option<Vec<ProblemItem>>,
}

#[derive(Serialize)]
struct ProblemItem {
    path: String,
    message: String,
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let this = match self {
            AdminError::Api(inner) => return inner.into_response(),
            other => other,
        };
        let (status, title) = match &this {
            AdminError::Api(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Internal error"),
            AdminError::InvalidCovenant(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid covenant document",
            ),
            AdminError::VersionConflict(_) => (StatusCode::CONFLICT, "Version conflict"),
            AdminError::NotFound => (StatusCode::NOT_FOUND, "Not found"),
            AdminError::Terminated => (StatusCode::CONFLICT, "Covenant terminated"),
            AdminError::InvalidTransition(_) => (StatusCode::CONFLICT, "Invalid transition"),
            AdminError::SignatureMalformed => (StatusCode::BAD_REQUEST, "Malformed signature"),
            AdminError::SignatureInvalid(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "Signature refused")
            }
            AdminError::NotAParty(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Signature refused"),
            AdminError::UnknownKey(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Signature refused"),
            AdminError::AuditUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "Audit log unavailable")
            }
            AdminError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "Service unavailable"),
        };
        let reason = this.reason();
        let problems = match &this {
            AdminError::InvalidCovenant(list) => Some(
                list.iter()
                    .map(|p| ProblemItem {
                        path: p.path.clone(),
                        message: p.message.clone(),
                    })
                    .collect(),
            ),
            _ => None,
        };
        let body = ProblemBody {
            type_: format!("https://poortwachter.example/problems/{reason}"),
            title,
            status: status.as_u16(),
            detail: this.to_string(),
            reason,
            problems,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let mut resp = (status, bytes).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        resp.extensions_mut().insert(Reason(reason));
        resp
    }
}
