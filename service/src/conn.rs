//! Connections: the accept loop, with a header-read timeout, an idle timeout and a connection cap.
//!
//! A client that opens a connection and sends nothing, or sends half a request and
//! stalls, would otherwise hold a socket (an open file) forever; enough of them and
//! the process cannot accept `/healthz`. So:
//!
//! - a request head must arrive in full within the header timeout (hyper's
//!   `header_read_timeout`, armed for a new connection and again after each answer,
//!   so it also bounds a keep-alive connection waiting for its next request);
//! - a connection on which no byte moves either way for the idle timeout is closed
//!   (a stalled body, a client that stopped reading); a response being sent is
//!   traffic, so an event stream, whose keep-alive comments come more often than
//!   the idle timeout, is never cut by it;
//! - at most `max_connections` are open, fewer when the process's open-file limit
//!   leaves less room (a reserve is kept for the database and the policy
//!   repository). When full, a new connection takes the place of the quietest
//!   connection that is not inside a request: first those that never finished a
//!   request head, then idle keep-alive ones. When every connection is inside a
//!   request, the newcomer gets a `503`.
//!
//! This module owns only the sockets; the routes are the API's.

use std::collections::HashMap;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::service::{Service as _, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// A request head must arrive in full within this, by default.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection with no traffic for this long is closed, by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// After a shutdown signal, requests in flight get this long to finish, by default.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this many connections are open at once, by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Open files kept free of connections for SQLite (a writer and pooled readers, each
/// with its WAL), the policy repository and the runtime.
const RESERVED_FILES: u64 = 64;
/// The fewest connections the open-file limit can lower the cap to.
const MIN_CONNECTIONS: usize = 16;

/// How the service treats connections.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// A request head must arrive in full within this.
    pub header_timeout: Duration,
    /// A connection with no traffic either way for this long is closed.
    pub idle_timeout: Duration,
    /// The most connections open at once (lowered to fit the open-file limit).
    pub max_connections: usize,
    /// After a shutdown signal, how long requests in flight get to finish before
    /// their connections are closed.
    pub drain_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

impl HttpOptions {
    /// The cap in effect: the configured one, lowered to fit the open-file limit.
    pub fn effective_max_connections(&self) -> usize {
        let configured = self.max_connections.max(1);
        match open_file_limit() {
            Some(limit) => {
                let room = usize::try_from(limit.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
                configured.min(room.max(MIN_CONNECTIONS))
            }
            None => configured,
        }
    }

    /// How often an event stream sends a keep-alive comment: well inside the idle
    /// timeout, so a quiet stream is never taken for an idle connection.
    pub fn keep_alive_interval(&self) -> Duration {
        (self.idle_timeout / 3).clamp(Duration::from_millis(100), Duration::from_secs(15))
    }
}

/// The process's soft limit on open files, where the platform tells (Linux).
fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&text)
}

/// The soft limit in `/proc/self/limits` text (`Max open files  1024  4096  files`).
fn parse_open_file_limit(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_whitespace().next()?.parse().ok()
}

/// When a connection last moved a byte, in milliseconds since the server started.
#[derive(Debug)]
struct Activity {
    epoch: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new(epoch: Instant) -> Activity {
        let a = Activity { epoch, last_ms: AtomicU64::new(0) };
        a.touch();
        a
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// A socket that records when it last moved a byte.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What the accept loop knows of one open connection.
struct Entry {
    activity: Arc<Activity>,
    /// Requests inside a handler right now.
    busy: Arc<AtomicUsize>,
    /// True once a request head arrived in full.
    served: Arc<AtomicBool>,
    /// Closes the connection when notified.
    evict: Arc<Notify>,
}

/// The open connections.
#[derive(Default)]
struct Registry {
    open: Mutex<HashMap<u64, Entry>>,
    /// Notified when a connection closes (shutdown waits for the last one).
    closed: Notify,
}

impl Registry {
    fn len(&self) -> usize {
        self.open.lock().map_or(0, |m| m.len())
    }

    /// Closes the quietest connection outside a request to make room; false when all are busy.
    fn evict_one(&self) -> bool {
        let Ok(mut open) = self.open.lock() else { return false };
        let victim = open
            .iter()
            .filter(|(_, e)| e.busy.load(Ordering::Acquire) == 0)
            // a connection that never sent a whole request goes before a keep-alive one
            .min_by_key(|(_, e)| (e.served.load(Ordering::Acquire), e.activity.last()))
            .map(|(id, _)| *id);
        match victim.and_then(|id| open.remove(&id)) {
            Some(e) => {
                e.evict.notify_one();
                true
            }
            None => false,
        }
    }

    /// Closes some connection, busy or not (past the drain deadline); false when none is open.
    fn evict_any(&self) -> bool {
        let Ok(mut open) = self.open.lock() else { return false };
        let Some(id) = open.keys().next().copied() else { return false };
        if let Some(e) = open.remove(&id) {
            e.evict.notify_one();
        }
        true
    }

    fn remove(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&id);
        }
        self.closed.notify_waiters();
    }
}

/// Counts a request as inside its handler for as long as it lives.
struct BusyGuard(Arc<AtomicUsize>);

impl BusyGuard {
    fn enter(busy: &Arc<AtomicUsize>) -> BusyGuard {
        busy.fetch_add(1, Ordering::AcqRel);
        BusyGuard(busy.clone())
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The answer to a connection that finds every slot inside a request.
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n\
retry-after: 1\r\ncontent-length: 91\r\n\r\n{\"error\":{\"code\":\"server/busy\",\"message\":\"every connection is in use; retry in a moment\"}}\n";

/// Serves `router` on `listener` until `shutdown` resolves, then drains: the
/// listener is closed (a new connection is refused), each connection finishes
/// the request it is in and closes, and after `drain_timeout` whatever is
/// still open is closed. `draining` runs once the connections open at the
/// signal are counted (it ends what never ends by itself, such as event
/// streams; ending them before the count would leave them out of it).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    opts: HttpOptions,
    shutdown: impl Future<Output = ()> + Send,
    draining: impl FnOnce() + Send,
) -> std::io::Result<()> {
    let max = opts.effective_max_connections();
    let registry = Arc::new(Registry::default());
    let epoch = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    let mut next_id = 0u64;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // out of files or a connection reset before it was taken: both pass
                    let error = e.to_string();
                    tracing::warn!(error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // an answer goes out as soon as it is written, never held back for an ACK
        let _ = stream.set_nodelay(true);
        if registry.len() >= max && !registry.evict_one() {
            let _ = stream.try_write(FULL);
            continue;
        }
        next_id += 1;
        let entry = Entry {
            activity: Arc::new(Activity::new(epoch)),
            busy: Arc::new(AtomicUsize::new(0)),
            served: Arc::new(AtomicBool::new(false)),
            evict: Arc::new(Notify::new()),
        };
        let task = Connection {
            id: next_id,
            activity: entry.activity.clone(),
            busy: entry.busy.clone(),
            served: entry.served.clone(),
            evict: entry.evict.clone(),
            registry: registry.clone(),
        };
        if let Ok(mut open) = registry.open.lock() {
            open.insert(next_id, entry);
        }
        tokio::spawn(task.run(stream, router.clone(), opts.clone(), stop_rx.clone()));
    }
    drop(listener);
    let open = registry.len();
    let _ = stop_tx.send(true);
    draining();
    let drain_ms = u64::try_from(opts.drain_timeout.as_millis()).unwrap_or(u64::MAX);
    tracing::info!(open, drain_ms, "shutting down: no new connections; draining requests in flight");
    // wait for the connections to finish what they were answering, up to the deadline
    let drained = tokio::time::timeout(opts.drain_timeout, async {
        loop {
            let closed = registry.closed.notified();
            if registry.len() == 0 {
                return;
            }
            closed.await;
        }
    })
    .await;
    if drained.is_err() {
        let open = registry.len();
        tracing::warn!(open, "the drain deadline passed; closing the connections still open");
        while registry.evict_any() {}
    }
    Ok(())
}

/// One connection's task.
struct Connection {
    id: u64,
    activity: Arc<Activity>,
    busy: Arc<AtomicUsize>,
    served: Arc<AtomicBool>,
    evict: Arc<Notify>,
    registry: Arc<Registry>,
}

impl Connection {
    async fn run(
        self,
        stream: TcpStream,
        router: Router,
        opts: HttpOptions,
        mut stop: watch::Receiver<bool>,
    ) {
        let io = TokioIo::new(Tracked { inner: stream, activity: self.activity.clone() });
        let routes = TowerToHyperService::new(router);
        let (busy, served) = (self.busy.clone(), self.served.clone());
        let service = service_fn(move |req: hyper::Request<Incoming>| {
            served.store(true, Ordering::Release);
            let guard = BusyGuard::enter(&busy);
            let answer = routes.call(req);
            async move {
                let _inside = guard;
                answer.await
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(opts.header_timeout);
        let mut conn = pin!(builder.serve_connection(io, service));
        let mut stopping = *stop.borrow();
        if stopping {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            let quiet_until = self.activity.last() + opts.idle_timeout;
            tokio::select! {
                _ = conn.as_mut() => break,
                () = self.evict.notified() => break,
                () = tokio::time::sleep_until(quiet_until) => {
                    // traffic since the deadline was set moves it; none means idle
                    if self.activity.last() + opts.idle_timeout <= Instant::now() {
                        break;
                    }
                }
                changed = stop.changed(), if !stopping => {
                    stopping = true;
                    if changed.is_err() || *stop.borrow() {
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
        // dropping the connection closes the socket
        self.registry.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_read_from_proc_text() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max cpu time              unlimited            unlimited            seconds\n\
                    Max open files            128                  4096                 files\n";
        assert_eq!(parse_open_file_limit(text), Some(128));
        assert_eq!(parse_open_file_limit("Max open files  unlimited unlimited files"), None);
        assert_eq!(parse_open_file_limit(""), None);
    }

    #[test]
    fn keep_alives_come_well_inside_the_idle_timeout() {
        let at = |idle| HttpOptions { idle_timeout: Duration::from_secs(idle), ..HttpOptions::default() };
        assert_eq!(at(60).keep_alive_interval(), Duration::from_secs(15));
        assert_eq!(at(3).keep_alive_interval(), Duration::from_secs(1));
        assert!(HttpOptions::default().effective_max_connections() >= MIN_CONNECTIONS);
    }

    /// Registers a connection last active `ms` after the epoch.
    fn add(r: &Registry, id: u64, epoch: Instant, ms: u64, served: bool, busy: usize) -> Arc<Notify> {
        let activity = Arc::new(Activity::new(epoch));
        activity.last_ms.store(ms, Ordering::Relaxed);
        let evict = Arc::new(Notify::new());
        let entry = Entry {
            activity,
            busy: Arc::new(AtomicUsize::new(busy)),
            served: Arc::new(AtomicBool::new(served)),
            evict: evict.clone(),
        };
        r.open.lock().unwrap().insert(id, entry);
        evict
    }

    #[tokio::test]
    async fn eviction_takes_the_quietest_connection_outside_a_request_head_first() {
        let r = Registry::default();
        let epoch = Instant::now();
        add(&r, 1, epoch, 0, true, 1); // inside a request since the start: never evicted
        add(&r, 2, epoch, 10, true, 0); // an idle keep-alive connection
        add(&r, 3, epoch, 50, false, 0); // a half-sent request, quieter than 4
        add(&r, 4, epoch, 90, false, 0);
        let order: Vec<u64> = (0..3)
            .map(|_| {
                let before: Vec<u64> = r.open.lock().unwrap().keys().copied().collect();
                assert!(r.evict_one());
                let after: Vec<u64> = r.open.lock().unwrap().keys().copied().collect();
                *before.iter().find(|id| !after.contains(id)).unwrap()
            })
            .collect();
        assert_eq!(order, [3, 4, 2]);
        // only the busy one is left: nothing to evict
        assert!(!r.evict_one());
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn the_busy_answer_is_well_formed() {
        let text = std::str::from_utf8(FULL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head} / {}", body.len());
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "server/busy");
    }
}
