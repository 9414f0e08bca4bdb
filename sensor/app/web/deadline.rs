//! A socket whose writes time out: a client that stops reading cannot hold a connection (and
//! its slot under the connection cap) forever.
//!
//! Contract: [`WriteDeadline`] passes reads through untouched (hyper's header timeout bounds
//! those) and fails a write, flush or shutdown with `io::ErrorKind::TimedOut` once the socket
//! has accepted no byte for the timeout. The clock starts at the first write that cannot
//! proceed and stops at any progress, so a slow but moving client is never cut, and a client
//! that pipelines requests and never reads is cut one timeout after the socket buffers fill.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

pub struct WriteDeadline<S> {
    inner: S,
    timeout: Duration,
    /// Running while a write is stalled; `None` while writes make progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub fn new(inner: S, timeout: Duration) -> Self {
        WriteDeadline {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// Turns a pending write into a time-out error once the stall has lasted long enough.
    fn on_write<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if sleep.as_mut().poll(cx).is_ready() {
                    self.stalled = None;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client accepted no data for the write timeout",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.on_write(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.on_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.on_write(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.on_write(cx, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_reader_that_never_reads_times_the_write_out() {
        rt().block_on(async {
            // A 64-byte pipe: the writer stalls after 64 bytes because nobody reads.
            let (a, _b) = tokio::io::duplex(64);
            let mut w = WriteDeadline::new(a, Duration::from_secs(10));
            let e = w.write_all(&[0u8; 4096]).await.expect_err("must time out");
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        });
    }

    #[test]
    fn a_slow_reader_that_keeps_reading_is_not_cut() {
        rt().block_on(async {
            let (a, mut b) = tokio::io::duplex(64);
            let reader = tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let mut total = 0;
                while total < 4096 {
                    // Each read comes 5 s after the last: under the 10 s timeout.
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    total += b.read(&mut buf).await.expect("read");
                }
                total
            });
            let mut w = WriteDeadline::new(a, Duration::from_secs(10));
            w.write_all(&[0u8; 4096]).await.expect("slow but moving");
            assert_eq!(reader.await.expect("join"), 4096);
        });
    }
}
