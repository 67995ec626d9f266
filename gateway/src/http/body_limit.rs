//! Refuse a request whose declared body (`Content-Length`) is larger than `limits.max_body_bytes`
//! before any of it is read, so the 413 goes out before hyper would send `100 Continue` (it does
//! so only when a body is read) and the client is not made to upload what will be refused. A body
//! without a declared length is cut off by the extractors' limit (`DefaultBodyLimit`) as it
//! arrives; either way the answer is `payload-too-large` and the connection closes after it.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::ApiError;
use crate::state::AppState;

pub async fn refuse_declared_oversize(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let limit = state.config.limits.max_body_bytes as u64;
    if declared_length(req.headers()).is_some_and(|n| n > limit) {
        return ApiError::PayloadTooLarge.into_response();
    }
    next.run(req).await
}

/// The `Content-Length` of a request, when it has a single valid one (hyper refuses the others
/// before they reach us).
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_length_is_read_from_content_length() {
        let mut h = HeaderMap::new();
        assert_eq!(declared_length(&h), None);
        h.insert(header::CONTENT_LENGTH, "10485760".parse().unwrap());
        assert_eq!(declared_length(&h), Some(10_485_760));
        h.insert(header::CONTENT_LENGTH, "ten".parse().unwrap());
        assert_eq!(declared_length(&h), None);
    }
}
