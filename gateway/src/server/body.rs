//! Request and response bodies as the connection sees them. A response body keeps its request
//! counted as in flight until it is sent. An HTTP/2 request body that the application drops
//! unfinished (a 413 answered from the declared length, or a body cut off at the limit) is read
//! to its end and discarded for a short while, so that a client that finishes its upload before
//! it reads the answer (curl 7.x does) gets the answer; only if it keeps sending beyond that is the
//! stream reset (with NO_ERROR once the answer is out, RFC 9113 §8.1). Never looks at the bytes.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};

use super::activity::InFlight;
use super::io::{LINGER, LINGER_MAX_BYTES};

/// A response body that keeps its request counted as in flight until it is sent (or dropped).
pub struct Tracked {
    body: Body,
    _request: InFlight,
}

impl Tracked {
    pub fn new(body: Body, request: InFlight) -> Self {
        Tracked {
            body,
            _request: request,
        }
    }
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An HTTP/2 request body that is read to its end (bounded) when dropped unfinished.
pub struct Drained {
    body: Option<Incoming>,
}

impl Drained {
    pub fn new(body: Incoming) -> Self {
        Drained { body: Some(body) }
    }
}

impl hyper::body::Body for Drained {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for Drained {
    fn drop(&mut self) {
        let Some(mut body) = self.body.take() else {
            return;
        };
        if body.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let _ = tokio::time::timeout(LINGER, async {
                let mut read = 0;
                while let Some(Ok(frame)) = body.frame().await {
                    read += frame.data_ref().map_or(0, |d| d.len());
                    if read >= LINGER_MAX_BYTES {
                        break;
                    }
                }
            })
            .await;
        });
    }
}
