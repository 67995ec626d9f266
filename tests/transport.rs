//! The transport under hostile traffic, over real sockets and real TLS: slow connections without
//! a certificate cannot crowd out an organisation (caps, eviction of the slowest, a bounded log),
//! slow request heads, silent handshakes and idle connections are closed by their timeouts, and an
//! oversized body is refused with a 413 that the client actually reads — before `100 Continue`,
//! over HTTP/1.1 and HTTP/2, with and without `Expect`, with and without `Content-Length`.

mod common;

use std::path::Path;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::*;
use hyper::body::{Bytes, Frame, SizeHint};
use rustls_pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A body far beyond `limits.max_body_bytes` (64 KiB in the demo configuration).
const TEN_MB: usize = 10 * 1024 * 1024;

// ── clients ─────────────────────────────────────────────────────────────────────────────────

/// A TLS client configuration offering one ALPN protocol, presenting the example certificate
/// `identity` (or none).
fn tls_config(identity: Option<&str>, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    let certs = certs_dir();
    let id = identity.map(|n| {
        (
            certs.join(format!("{n}.pem")),
            certs.join(format!("{n}-key.pem")),
        )
    });
    let config = devkit::tls::client_config(
        &certs.join("ca.pem"),
        id.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
    )
    .expect("client TLS configuration");
    let mut config = (*config).clone();
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

async fn tls_connect(port: u16, config: Arc<rustls::ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("TCP connect");
    tcp.set_nodelay(true).expect("nodelay");
    TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

/// How an HTTP/1.1 request carries its body.
#[derive(Debug, Clone, Copy)]
enum Framing {
    ContentLength,
    Chunked,
}

/// Send a POST with a `len`-byte body over a fresh HTTP/1.1 connection as `sdd`, the way curl
/// does: it keeps uploading while it watches for an answer, stops uploading once a final answer
/// has come, and gives up (`Err`) when a write fails before it has one — which is how the 413
/// was lost when the gateway reset the connection under a client still sending. With `expect`
/// it announces `Expect: 100-continue` and (with a `Content-Length`) sends no body until told
/// to. Returns everything the server sent until it closed.
async fn h1_post(
    port: u16,
    path: &str,
    content_type: &str,
    framing: Framing,
    expect: bool,
    len: usize,
) -> Result<Vec<u8>, String> {
    let tls = tls_connect(port, tls_config(Some("sdd"), b"http/1.1")).await;
    let (mut rx, mut tx) = tokio::io::split(tls);
    let mut head =
        format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n");
    match framing {
        Framing::ContentLength => head += &format!("Content-Length: {len}\r\n"),
        Framing::Chunked => head += "Transfer-Encoding: chunked\r\n",
    }
    if expect {
        head += "Expect: 100-continue\r\n";
    }
    head += "\r\n";
    tx.write_all(head.as_bytes()).await.expect("head written");
    // The body as it goes on the wire.
    let mut wire = Vec::with_capacity(len + len / 1000 + 16);
    let chunk = vec![b' '; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = chunk.len().min(left);
        if matches!(framing, Framing::Chunked) {
            wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        }
        wire.extend_from_slice(&chunk[..n]);
        if matches!(framing, Framing::Chunked) {
            wire.extend_from_slice(b"\r\n");
        }
        left -= n;
    }
    if matches!(framing, Framing::Chunked) {
        wire.extend_from_slice(b"0\r\n\r\n");
    }
    // A client that waits for `100 Continue` sends nothing until it comes (it must not, here).
    let mut sending = !(expect && matches!(framing, Framing::ContentLength));
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let exchange = async {
        loop {
            tokio::select! {
                biased;
                r = rx.read(&mut buf) => match r {
                    Ok(0) | Err(_) => return Ok(()),
                    Ok(n) => {
                        got.extend_from_slice(&buf[..n]);
                        if final_answer_complete(&got) {
                            sending = false;
                        } else if !sending && got.starts_with(b"HTTP/1.1 100") {
                            sending = true;
                        }
                    }
                },
                w = tx.write(&wire[sent..(sent + 64 * 1024).min(wire.len())]),
                    if sending && sent < wire.len() => match w {
                    Ok(n) if n > 0 => sent += n,
                    other => return Err(format!(
                        "a write failed after {sent} bytes ({other:?}), before an answer came \
                         ({} bytes read)",
                        got.len()
                    )),
                },
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "no end within 10 s".to_owned())??;
    Ok(got)
}

/// Whether `raw` holds a complete final (non-1xx) HTTP/1.1 answer with its body.
fn final_answer_complete(raw: &[u8]) -> bool {
    let mut rest = raw;
    while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
        rest = &rest[end + 4..];
        if head.starts_with("http/1.1 1") {
            continue;
        }
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        return rest.len() >= len;
    }
    false
}

/// The interim (1xx) status lines and the final answer (status, lower-cased head, body) in the
/// bytes an HTTP/1.1 server sent.
fn parse_h1(raw: &[u8]) -> (Vec<String>, u16, String, Vec<u8>) {
    let mut rest = raw;
    let mut interim = Vec::new();
    loop {
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no complete answer in {} bytes", raw.len()));
        let head = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {head:?}"));
        rest = &rest[end + 4..];
        if status < 200 {
            interim.push(head.lines().next().unwrap_or("").to_owned());
            continue;
        }
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().expect("content-length"))
            .unwrap_or(0);
        assert!(rest.len() >= len, "the answer's body is cut short");
        return (interim, status, head, rest[..len].to_vec());
    }
}

/// A request body of `len` bytes produced as it is sent; with `declared` its length is announced
/// (`content-length`), else it is sent without one.
struct Upload {
    left: usize,
    declared: bool,
    chunk: Bytes,
    /// Bytes hyper has taken to send (it takes more only as the server's flow-control window
    /// opens, i.e. as the server reads).
    taken: Arc<AtomicUsize>,
}

impl Upload {
    /// `len` spaces.
    fn new(len: usize, declared: bool) -> Self {
        Upload {
            left: len,
            declared,
            chunk: Bytes::from(vec![b' '; 64 * 1024]),
            taken: Arc::default(),
        }
    }

    /// These bytes, with their length declared.
    fn bytes(data: Bytes) -> Self {
        Upload {
            left: data.len(),
            declared: true,
            chunk: data,
            taken: Arc::default(),
        }
    }
}

impl hyper::body::Body for Upload {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.chunk.len().min(self.left);
        self.left -= n;
        self.taken.fetch_add(n, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        if self.declared {
            SizeHint::with_exact(self.left as u64)
        } else {
            SizeHint::default()
        }
    }
}

type H2Sender = hyper::client::conn::http2::SendRequest<Upload>;

/// An HTTP/2 connection as `sdd`.
async fn h2_connect(port: u16) -> H2Sender {
    h2_connect_as(port, "sdd").await
}

/// An HTTP/2 connection presenting the example certificate `who`.
async fn h2_connect_as(port: u16, who: &str) -> H2Sender {
    let tls = tls_connect(port, tls_config(Some(who), b"h2")).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

/// POST `body` on an HTTP/2 connection; the answer's status and body.
async fn h2_post(
    sender: &mut H2Sender,
    port: u16,
    path: &str,
    content_type: &str,
    expect: bool,
    body: Upload,
) -> Result<(u16, Vec<u8>), String> {
    use http_body_util::BodyExt;
    let mut req = hyper::Request::post(format!("https://localhost:{port}{path}"))
        .header("content-type", content_type);
    if body.declared {
        req = req.header("content-length", body.left.to_string());
    }
    if expect {
        req = req.header("expect", "100-continue");
    }
    let req = req.body(body).expect("request");
    sender
        .ready()
        .await
        .map_err(|e| format!("not ready: {e}"))?;
    let exchange = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("no answer: {e:?}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("answer cut short: {e:?}"))?
            .to_bytes()
            .to_vec();
        Ok((status, body))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "no answer within 10 s".to_owned())?
}

#[track_caller]
fn assert_payload_too_large(body: &[u8], what: &str) {
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|_| {
        panic!(
            "{what}: a problem body, got {:?}",
            String::from_utf8_lossy(body)
        )
    });
    assert_eq!(v["reason"], "payload-too-large", "{what}: {v}");
    assert_eq!(v["status"], 413, "{what}: {v}");
}

// ── oversized bodies ────────────────────────────────────────────────────────────────────────

/// Each case this many times: the lost answers came in 3–7 of 10 tries with curl.
const ROUNDS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_answered_413_before_100_continue_and_the_client_reads_it_over_http1()
{
    let gw = Gateway::start().await;
    for round in 0..ROUNDS {
        for path in ["/v1/disclosures", "/v1/consents"] {
            for (framing, expect) in [
                (Framing::ContentLength, true),
                (Framing::ContentLength, false),
                (Framing::Chunked, true),
                (Framing::Chunked, false),
            ] {
                let what = format!("round {round}: {path} {framing:?} expect={expect}");
                let raw = h1_post(gw.port, path, "application/json", framing, expect, TEN_MB)
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                let (interim, status, head, body) = parse_h1(&raw);
                assert_eq!(status, 413, "{what}: {head}");
                assert_payload_too_large(&body, &what);
                assert!(head.contains("connection: close"), "{what}: {head}");
                if matches!(framing, Framing::ContentLength) {
                    assert!(
                        interim.is_empty(),
                        "{what}: the declared length is refused before `100 Continue`: {interim:?}"
                    );
                }
            }
        }
    }
    // The gateway keeps serving.
    let r = gw.client("sdd").get("/healthz").await.expect("answered");
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_answered_413_over_http2_and_the_connection_stays_usable() {
    let gw = Gateway::start().await;
    let mut upload_times = Vec::new();
    for round in 0..ROUNDS {
        let mut sender = h2_connect(gw.port).await;
        for path in ["/v1/disclosures", "/v1/consents"] {
            for (declared, expect) in [(true, true), (true, false), (false, false)] {
                let what = format!("round {round}: {path} declared={declared} expect={expect}");
                let upload = Upload::new(TEN_MB, declared);
                let taken = upload.taken.clone();
                let (status, body) = h2_post(
                    &mut sender,
                    gw.port,
                    path,
                    "application/json",
                    expect,
                    upload,
                )
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(status, 413, "{what}");
                assert_payload_too_large(&body, &what);
                // A client that finishes its upload before it reads the answer (curl 7.x fails
                // the transfer on a reset that comes while it is still sending) may finish it:
                // the gateway reads the rest instead of resetting the stream at once.
                let started = Instant::now();
                while taken.load(Ordering::SeqCst) < TEN_MB {
                    assert!(
                        started.elapsed() < Duration::from_secs(5),
                        "{what}: the stream was cut off after {} bytes",
                        taken.load(Ordering::SeqCst)
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                upload_times.push(started.elapsed());
            }
        }
        // Only the refused streams were reset: the connection answers the next request.
        let (status, body) = h2_post(
            &mut sender,
            gw.port,
            "/v1/disclosures",
            "application/json",
            false,
            Upload::new(0, true),
        )
        .await
        .expect("the connection still answers");
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    }
    eprintln!(
        "rest of the upload read in at most {:?}",
        upload_times.iter().max()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_consent_token_sent_as_application_jose_is_refused_with_payload_too_large() {
    let gw = Gateway::start().await;
    for framing in [Framing::ContentLength, Framing::Chunked] {
        let raw = h1_post(
            gw.port,
            "/v1/consents",
            "application/jose",
            framing,
            false,
            100 * 1024,
        )
        .await
        .unwrap_or_else(|e| panic!("{framing:?}: {e}"));
        let (_, status, head, body) = parse_h1(&raw);
        assert_eq!(status, 413, "{framing:?}: {head}");
        assert_payload_too_large(&body, &format!("{framing:?}"));
    }
    let mut sender = h2_connect(gw.port).await;
    let (status, body) = h2_post(
        &mut sender,
        gw.port,
        "/v1/consents",
        "application/jose",
        false,
        Upload::new(100 * 1024, false),
    )
    .await
    .expect("answered");
    assert_eq!(status, 413);
    assert_payload_too_large(&body, "HTTP/2 without a length");
    // A token of normal size as application/jose still registers.
    let token = sign_as_uwv(&demo_consent(&new_jti(), &bsn(7)));
    let mut uwv = h2_connect_as(gw.port, "uwv").await;
    let (status, body) = h2_post(
        &mut uwv,
        gw.port,
        "/v1/consents",
        "application/jose",
        false,
        Upload::bytes(Bytes::from(token)),
    )
    .await
    .expect("answered");
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
}

// ── timeouts ────────────────────────────────────────────────────────────────────────────────

/// Read until the server closes (EOF or error); returns what it sent and when it closed, or
/// `None` if it was still open after `limit`.
async fn until_closed<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    limit: Duration,
) -> Option<(Vec<u8>, Duration)> {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()?;
    Some((got, started.elapsed()))
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_sent_slower_than_the_header_timeout_is_closed() {
    let gw = Gateway::start_on(TestDatabase::Sqlite, |c| {
        c.connections.header_read_timeout_ms = 600;
    })
    .await;
    // One byte of the head every 100 ms, never finishing it, for up to 5 s.
    let mut slow = tls_connect(gw.port, tls_config(None, b"http/1.1")).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (mut rx, mut tx) = tokio::io::split(slow);
    let trickle = tokio::spawn(async move {
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if tx.write_all(b"X").await.is_err() || tx.flush().await.is_err() {
                return;
            }
        }
    });
    let closed = until_closed(&mut rx, Duration::from_secs(5)).await;
    trickle.abort();
    let (got, _) = closed.expect("the slow head is cut off within 5 s");
    let after = started.elapsed();
    assert!(got.is_empty(), "an unfinished head gets no answer");
    assert!(
        after >= Duration::from_millis(500) && after < Duration::from_secs(3),
        "closed after {after:?} (header timeout 600 ms)"
    );

    // Waiting idle longer than the header timeout is no slow head: the request after it is served.
    let mut patient = tls_connect(gw.port, tls_config(None, b"http/1.1")).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    patient
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("still open");
    let (got, _) = until_closed(&mut patient, Duration::from_secs(5))
        .await
        .expect("answered and closed");
    let (_, status, _, body) = parse_h1(&got);
    assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));

    let text = text(&gw.client("sdd").get("/metrics").await.expect("metrics"));
    assert!(
        metric(
            &text,
            "poortwachter_connections_closed_total{kind=\"unidentified\",cause=\"header-timeout\"}"
        ) >= 1,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_after_the_handshake_and_idle_timeouts() {
    let gw = Gateway::start_on(TestDatabase::Sqlite, |c| {
        c.connections.handshake_timeout_ms = 400;
        c.connections.idle_timeout_ms = 700;
    })
    .await;
    // TCP only, no ClientHello.
    let mut mute = TcpStream::connect(("127.0.0.1", gw.port)).await.unwrap();
    let (_, after) = until_closed(&mut mute, Duration::from_secs(5))
        .await
        .expect("a silent handshake is cut off");
    assert!(after < Duration::from_secs(3), "after {after:?}");

    // A finished handshake, then nothing: closed after the idle timeout, with an identified
    // connection just the same.
    for who in [None, Some("sdd")] {
        let mut idle = tls_connect(gw.port, tls_config(who, b"http/1.1")).await;
        let (got, after) = until_closed(&mut idle, Duration::from_secs(5))
            .await
            .expect("an idle connection is closed");
        assert!(got.is_empty());
        assert!(
            after >= Duration::from_millis(500) && after < Duration::from_secs(3),
            "{who:?}: closed after {after:?} (idle timeout 700 ms)"
        );
    }
    // HTTP/2 too (GOAWAY).
    let mut h2 = h2_connect(gw.port).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        h2.ready().await.is_err() || h2.is_closed(),
        "the idle HTTP/2 connection is gone"
    );

    let text = text(&gw.client("sdd").get("/metrics").await.expect("metrics"));
    for series in [
        "poortwachter_connections_closed_total{kind=\"unidentified\",cause=\"handshake-timeout\"}",
        "poortwachter_connections_closed_total{kind=\"unidentified\",cause=\"idle-timeout\"}",
        "poortwachter_connections_closed_total{kind=\"identified\",cause=\"idle-timeout\"}",
    ] {
        assert!(metric(&text, series) >= 1, "{series}: {text}");
    }
}

// ── connection caps ─────────────────────────────────────────────────────────────────────────

/// The gateway binary as a child process with a small open-files limit; killed when dropped.
struct Child_(Child);

impl Drop for Child_ {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_with_open_files_limit(limit: u32, config: &Path, log: &Path) -> Child_ {
    let log = std::fs::File::create(log).expect("log file");
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n {limit} && exec \"$0\" serve --config \"$1\""
        ))
        .arg(env!("CARGO_BIN_EXE_poortwachter"))
        .arg(config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("the gateway starts");
    Child_(child)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("address").port()
}

/// How long an organisation's disclosure may take, connection set-up included, while the flood
/// is on.
const SERVED_WITHIN: Duration = Duration::from_secs(2);
const SLOW_CONNECTIONS: usize = 1000;

/// One slow-loris connection without a certificate: handshake, an unfinished request head (then
/// the `opening` permit goes back), then hold it until the server closes it. `true` when the
/// server closed it.
async fn slow_loris(
    port: u16,
    config: Arc<rustls::ClientConfig>,
    opening: tokio::sync::OwnedSemaphorePermit,
    hold: Duration,
) -> Option<bool> {
    let tcp = tokio::time::timeout(
        Duration::from_secs(5),
        TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .ok()?
    .ok()?;
    let mut tls = tokio::time::timeout(
        Duration::from_secs(5),
        TlsConnector::from(config).connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .ok()?
    .ok()?;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .ok()?;
    drop(opening);
    Some(until_closed(&mut tls, hold).await.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisation_is_served_while_a_thousand_slow_connections_without_a_certificate_are_held(
) {
    let data = tempfile::tempdir().expect("temporary directory");
    let port = free_port();
    let config = write_demo_config(data.path(), &format!("127.0.0.1:{port}"));
    // A cap of 256, 64 of them for unidentified connections; heads may take a minute, so it is
    // the caps that hold the flood, not the header timeout.
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml +=
        "\n[connections]\nmax_open = 256\nmax_unidentified = 64\nheader_read_timeout_ms = 60000\n";
    std::fs::write(&config, toml).unwrap();
    let log = data.path().join("gateway.log");
    // 512 descriptors: without caps, 1,000 connections exhaust them.
    let _gateway = spawn_with_open_files_limit(512, &config, &log);
    let certs = certs_dir();
    let started = Instant::now();
    loop {
        if let Ok(r) = client(&certs, "sdd", port).get("/healthz").await {
            if r.status == 200 {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the gateway did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A client with consent and a handover record, so the disclosure is a release.
    let subject = bsn(1);
    seed_demo_client(&client(&certs, "uwv", port), &subject).await;
    let ask = ask(&subject, "job-mediation", &["own_transport"]);
    let disclose = || async {
        let c = devkit::client::MtlsClient::builder(certs.join("ca.pem"))
            .identity(certs.join("sdd.pem"), certs.join("sdd-key.pem"))
            .port(port)
            .timeout(SERVED_WITHIN + Duration::from_secs(3))
            .build()
            .expect("client");
        let started = Instant::now();
        let r = c.post_json("/v1/disclosures", &ask).await;
        (r, started.elapsed())
    };

    // The flood: 1,000 slow connections without a certificate, 32 opening at a time, each held
    // until the gateway closes it.
    let anonymous = tls_config(None, b"http/1.1");
    let launched = Arc::new(AtomicUsize::new(0));
    let flood = {
        let launched = launched.clone();
        tokio::spawn(async move {
            let gate = Arc::new(tokio::sync::Semaphore::new(32));
            let mut held = tokio::task::JoinSet::new();
            for _ in 0..SLOW_CONNECTIONS {
                let permit = gate.clone().acquire_owned().await.unwrap();
                let config = anonymous.clone();
                held.spawn(slow_loris(port, config, permit, Duration::from_secs(60)));
                launched.fetch_add(1, Ordering::SeqCst);
            }
            held
        })
    };

    // Disclosures over fresh connections while the flood goes on.
    let mut latencies = Vec::new();
    while launched.load(Ordering::SeqCst) < SLOW_CONNECTIONS {
        let (r, took) = disclose().await;
        let r = r.unwrap_or_else(|e| {
            panic!(
                "no answer after {took:?} with {} slow connections launched: {e}",
                launched.load(Ordering::SeqCst)
            )
        });
        assert_permitted(&r);
        latencies.push(took);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let flood_took = started.elapsed();
    // And once every slow connection is open or closed.
    let mut held = tokio::time::timeout(Duration::from_secs(30), flood)
        .await
        .expect("the flood is launched")
        .unwrap();
    let (r, took) = disclose().await;
    assert_permitted(&r.expect("answered after the flood"));
    latencies.push(took);
    let slowest = latencies.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{} disclosures during and after the flood (launched in {flood_took:?}): slowest {slowest:?}",
        latencies.len()
    );
    assert!(
        latencies.len() >= 3,
        "disclosures during the flood: {latencies:?}"
    );
    assert!(
        slowest < SERVED_WITHIN,
        "every disclosure within {SERVED_WITHIN:?}: {latencies:?}"
    );

    let metrics = text(
        &client(&certs, "sdd", port)
            .get("/metrics")
            .await
            .expect("metrics"),
    );
    let open = metric(
        &metrics,
        "poortwachter_connections_open{kind=\"unidentified\"}",
    );
    let refused = metric(
        &metrics,
        "poortwachter_connections_refused_total{kind=\"unidentified\"}",
    );
    eprintln!("unidentified open {open}, refused {refused}");
    assert!(open <= 64, "the unidentified budget holds: {open}");
    assert!(
        refused as usize >= SLOW_CONNECTIONS - 64 - 32,
        "the slowest made room: {refused}"
    );
    assert_eq!(metric(&metrics, "poortwachter_accept_errors_total"), 0);

    held.abort_all();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let lines = log_text.lines().count();
    eprintln!("gateway log: {lines} lines, {} bytes", log_text.len());
    assert!(
        lines < 40,
        "the log stays small under the flood ({lines} lines):\n{}",
        log_text.lines().take(60).collect::<Vec<_>>().join("\n")
    );
}
