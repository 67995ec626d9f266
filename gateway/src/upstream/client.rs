//! One source's client: mutual TLS with the gateway's own certificate, the source's CA pinned
//! (the only trust anchor for it), HTTP/1.1 keep-alive connections, a concurrency limit, connect
//! and answer timeouts and a circuit breaker. Never logs the query or the answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use policy::Oin;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;

use super::breaker::{Breaker, BreakerState};
use super::SourceFault;
use crate::config::SourceSection;

/// The path of the source interface (`schemas/source-openapi.yaml`).
pub const QUERY_PATH: &str = "/v1/field-queries";
/// The largest answer read from a source.
const MAX_ANSWER: usize = 1024 * 1024;
/// Idle keep-alive connections kept per source.
const MAX_IDLE: usize = 32;

type Sender = SendRequest<Full<Bytes>>;

/// Counters per source for `/metrics`.
#[derive(Debug, Default)]
pub struct SourceCounters {
    pub ok: AtomicU64,
    pub unavailable: AtomicU64,
    pub timeout: AtomicU64,
    pub invalid_answer: AtomicU64,
    /// Refused at once by the open breaker (not sent).
    pub breaker_open: AtomicU64,
}

pub struct SourceClient {
    pub oin: Oin,
    host: String,
    port: u16,
    authority: String,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    connect_timeout: Duration,
    answer_timeout: Duration,
    limit: Semaphore,
    idle: Mutex<Vec<Sender>>,
    pub breaker: Breaker,
    pub counters: SourceCounters,
}

impl SourceClient {
    pub fn new(section: &SourceSection, tls: Arc<rustls::ClientConfig>) -> Result<Self, String> {
        let (host, port) = section
            .host_port()
            .ok_or_else(|| "url must be https://host[:port]".to_owned())?;
        let name = section.server_name.clone().unwrap_or_else(|| host.clone());
        let server_name = ServerName::try_from(name.clone())
            .map_err(|_| format!("invalid server name {name:?}"))?;
        Ok(SourceClient {
            oin: section.oin.clone(),
            authority: format!("{host}:{port}"),
            host,
            port,
            server_name,
            connector: TlsConnector::from(tls),
            connect_timeout: Duration::from_millis(section.connect_timeout_ms),
            answer_timeout: Duration::from_millis(section.answer_timeout_ms),
            limit: Semaphore::new(section.max_concurrent),
            idle: Mutex::new(Vec::new()),
            breaker: Breaker::new(
                section.breaker_failures,
                Duration::from_millis(section.breaker_open_ms),
            ),
            counters: SourceCounters::default(),
        })
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state(Instant::now())
    }

    /// POST `body` (the JSON field query) and return the answer body, or the fault. The whole
    /// call, waiting for a free slot included, is bounded by connect + answer timeouts.
    pub async fn post(&self, body: Bytes, traceparent: Option<&str>) -> Result<Bytes, SourceFault> {
        if !self.breaker.admit(Instant::now()) {
            self.counters.breaker_open.fetch_add(1, Ordering::Relaxed);
            return Err(SourceFault::Unavailable);
        }
        let result = tokio::time::timeout(
            self.connect_timeout + self.answer_timeout,
            self.post_limited(body, traceparent),
        )
        .await
        .unwrap_or(Err(SourceFault::Timeout));
        self.breaker.record(result.is_ok(), Instant::now());
        let counter = match &result {
            Ok(_) => &self.counters.ok,
            Err(SourceFault::Unavailable) => &self.counters.unavailable,
            Err(SourceFault::Timeout) => &self.counters.timeout,
            Err(SourceFault::InvalidAnswer) => &self.counters.invalid_answer,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    async fn post_limited(
        &self,
        body: Bytes,
        traceparent: Option<&str>,
    ) -> Result<Bytes, SourceFault> {
        let _permit = self
            .limit
            .acquire()
            .await
            .map_err(|_| SourceFault::Unavailable)?;
        // A kept-alive connection may have been closed by the source meanwhile: then one retry
        // on a fresh connection (the query is a read, safe to repeat).
        if let Some(sender) = self.take_idle() {
            match self.exchange(sender, body.clone(), traceparent).await {
                Err(Retry::Fresh) => {}
                Err(Retry::Fault(f)) => return Err(f),
                Ok(b) => return Ok(b),
            }
        }
        let sender = self.connect().await?;
        match self.exchange(sender, body, traceparent).await {
            Ok(b) => Ok(b),
            Err(Retry::Fresh) => Err(SourceFault::Unavailable),
            Err(Retry::Fault(f)) => Err(f),
        }
    }

    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(s) = idle.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    fn put_idle(&self, sender: Sender) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(sender);
            }
        }
    }

    async fn connect(&self) -> Result<Sender, SourceFault> {
        let connect = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|_| SourceFault::Unavailable)?;
            let _ = tcp.set_nodelay(true);
            let tls = self
                .connector
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(|_| SourceFault::Unavailable)?;
            let (sender, conn) = http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|_| SourceFault::Unavailable)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(sender)
        };
        tokio::time::timeout(self.connect_timeout, connect)
            .await
            .unwrap_or(Err(SourceFault::Unavailable))
    }

    async fn exchange(
        &self,
        mut sender: Sender,
        body: Bytes,
        traceparent: Option<&str>,
    ) -> Result<Bytes, Retry> {
        if sender.ready().await.is_err() {
            return Err(Retry::Fresh);
        }
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(QUERY_PATH)
            .header(HOST, &self.authority)
            .header(CONTENT_TYPE, "application/json");
        if let Some(tp) = traceparent {
            req = req.header("traceparent", tp);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|_| Retry::Fault(SourceFault::Unavailable))?;
        let answer = async {
            let resp = sender.send_request(req).await.map_err(|e| {
                if e.is_canceled() || e.is_closed() || e.is_incomplete_message() {
                    Retry::Fresh
                } else {
                    Retry::Fault(SourceFault::Unavailable)
                }
            })?;
            let status = resp.status();
            let bytes = Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|_| Retry::Fault(SourceFault::InvalidAnswer))?
                .to_bytes();
            if status.is_server_error() {
                return Err(Retry::Fault(SourceFault::Unavailable));
            }
            if status != hyper::StatusCode::OK {
                return Err(Retry::Fault(SourceFault::InvalidAnswer));
            }
            Ok(bytes)
        };
        match tokio::time::timeout(self.answer_timeout, answer).await {
            Ok(Ok(bytes)) => {
                self.put_idle(sender);
                Ok(bytes)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Retry::Fault(SourceFault::Timeout)),
        }
    }
}

enum Retry {
    /// The connection was stale before anything was answered: try once on a fresh one.
    Fresh,
    Fault(SourceFault),
}
