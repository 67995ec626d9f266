//! Covenant administration endpoints (`covenant-admin` bearer token): thin handlers over
//! `ops::covenants` (acts and views); their errors become problem details in `problem`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::auth::Role;
use crate::ops::covenants::acts::{self, Actor, Transition};
use crate::ops::covenants::views;
use crate::state::AppState;

use super::problem::{bearer, ApiError};

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
fn admin(state: &AppState, headers: &HeaderMap) -> Result<Actor, ApiError> {
    let claims = bearer(&state.humans, headers)?;
    claims.require(Role::CovenantAdmin)?;
    Ok(Actor::from(&claims))
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let actor = admin(&state, &headers)?;
    let body = super::read_body(body)?;
    let view = acts::create(&state, &actor, &body).await?;
    let location = format!("/v1/covenants/{}", view.covenant_id);
    let mut resp = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    Ok(Json(views::list(&state).await?).into_response())
}

async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    Ok(Json(views::show(&state, &id).await?).into_response())
}

async fn show_version(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    Ok(Json(views::show_version(&state, &id, &version).await?).into_response())
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
) -> Result<Response, ApiError> {
    let actor = admin(&state, &headers)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let jws = if is_json {
        super::parse_json::<SignatureBody>(body)?.jws
    } else {
        let bytes = super::read_body(body)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::malformed("the signature is not UTF-8 text"))?
    };
    let signed = acts::sign(&state, &actor, &id, &version, &jws).await?;
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
) -> Result<Response, ApiError> {
    let actor = admin(&state, &headers)?;
    Ok(Json(acts::transition(&state, &actor, &id, t).await?).into_response())
}

async fn suspend(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    act(state, headers, id, Transition::Suspend).await
}

async fn resume(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    act(state, headers, id, Transition::Resume).await
}

async fn terminate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    act(state, headers, id, Transition::Terminate).await
}
