//! The connection's byte stream as hyper sees it: every read is noted in the connection's
//! [`Activity`] (for the header-read and idle timeouts), and a close by the server lingers: after
//! our side is shut (TLS close_notify, TCP FIN) it reads and discards what the client still
//! sends, for a short while, so that a client still uploading a body we refused (413) reads our
//! answer instead of losing it to a TCP reset. Never looks at the bytes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::activity::Activity;

/// How long a closing connection keeps reading what the client still sends.
pub const LINGER: Duration = Duration::from_secs(2);
/// How much a closing connection reads at most before it stops lingering.
pub const LINGER_MAX_BYTES: usize = 32 * 1024 * 1024;

/// A stream that reports reads to an [`Activity`] and lingers on shutdown.
pub struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
    closing: Closing,
}

enum Closing {
    Open,
    Draining {
        until: Pin<Box<tokio::time::Sleep>>,
        read: usize,
    },
    Closed,
}

impl<T> Watched<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        Watched {
            inner,
            activity,
            closing: Closing::Open,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.note_read();
        }
        result
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.closing {
                Closing::Open => {
                    let shut = ready!(Pin::new(&mut this.inner).poll_shutdown(cx));
                    this.closing = match shut {
                        Ok(()) => Closing::Draining {
                            until: Box::pin(tokio::time::sleep(LINGER)),
                            read: 0,
                        },
                        Err(_) => Closing::Closed,
                    };
                }
                Closing::Draining { until, read } => {
                    if until.as_mut().poll(cx).is_ready() || *read >= LINGER_MAX_BYTES {
                        this.closing = Closing::Closed;
                        continue;
                    }
                    let mut scratch = [0u8; 8192];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                            *read += buf.filled().len();
                        }
                        // The client closed (or failed): nothing more to wait for.
                        Poll::Ready(_) => this.closing = Closing::Closed,
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Closing::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_closing_stream_reads_what_the_peer_still_sends_until_it_closes() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let activity = Arc::new(Activity::new());
        activity.handshake_done();
        let mut ours = Watched::new(ours, activity.clone());
        // The peer is still sending 1 MiB through a 1 KiB pipe when we close our side.
        let sender = tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..16 {
                theirs
                    .write_all(&chunk)
                    .await
                    .expect("the server keeps reading");
            }
            let mut rest = Vec::new();
            theirs.read_to_end(&mut rest).await.expect("our side ended");
            drop(theirs);
        });
        tokio::time::timeout(LINGER, ours.shutdown())
            .await
            .expect("shutdown ends when the peer is done")
            .expect("shutdown succeeds");
        sender.await.expect("the peer wrote everything");
    }

    #[tokio::test]
    async fn reads_are_noted_as_activity() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let activity = Arc::new(Activity::new());
        activity.handshake_done();
        let mut ours = Watched::new(ours, activity.clone());
        let t = super::super::activity::Timeouts {
            handshake: Duration::from_secs(1),
            header_read_ms: 10,
            idle_ms: 1_000_000,
        };
        use super::super::activity::Expiry;
        assert!(matches!(
            activity.next_expiry(&t, false),
            Some((_, Expiry::Idle))
        ));
        theirs.write_all(b"GET / HT").await.unwrap();
        let mut buf = [0u8; 8];
        ours.read_exact(&mut buf).await.unwrap();
        assert!(matches!(
            activity.next_expiry(&t, false),
            Some((_, Expiry::Header))
        ));
    }
}
