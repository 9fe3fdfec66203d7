//! The connection loop: hyper with a timer, so that hostile clients cannot hold the
//! server's connections (and file descriptors), and room kept for a client with a request
//! even when every connection is taken.
//!
//! `axum::serve` runs hyper without a timer, which silently disables hyper's header-read
//! timeout: a client dribbling one header byte every few seconds keeps its connection
//! forever, and a thousand of them exhaust the descriptors. `hyper_util`'s `auto` builder
//! runs no timer either while it reads the first bytes to tell HTTP/1 from HTTP/2, so a
//! client that connects and sends nothing was held forever too. Here:
//! - **descriptors:** at start the soft open-file limit (`RLIMIT_NOFILE`) is raised to the
//!   hard limit where the system allows, and the connection cap is kept below it: the cap
//!   plus a small waiting room (below) plus a reserve for the database, the model files,
//!   the logs and outbound `imgUrl` fetches (64 descriptors or a tenth of the limit,
//!   whichever is more) must fit, or the cap is lowered, with a warning, to what fits;
//! - **first bytes:** a connection has `limits.header_read_timeout_ms` from its accept to
//!   the head of its first request, protocol detection included (the timer sits in the
//!   socket's reads, under hyper); after that, every HTTP/1 request has that long to send
//!   its headers, which is also the idle keep-alive timeout (hyper's own timer), and
//!   HTTP/2 connections are pinged and dropped when the peer stops answering;
//! - **the cap:** at most `limits.max_connections` connections are served at once;
//! - **full:** when they are all taken the loop still accepts, into a waiting room of a
//!   few dozen sockets (an eighth of the cap, 4 to 128). A newcomer there must send its
//!   first bytes within [`FIRST_BYTES_WHEN_FULL`] (a real client sends its request with
//!   the handshake's last packet; one that has waited in the listen backlog has had even
//!   longer), or it is closed. One that does takes the place of the connection that has
//!   had no request in flight for longest, once that is at least [`EVICTABLE_AFTER_IDLE`]
//!   (an idle keep-alive connection, or one that never finished a request head): that
//!   connection is closed. Connections with a request in flight are never closed for
//!   room; if all are busy the newcomer waits for one to finish, at most its header
//!   timeout. When the waiting room is full too, clients wait in the listen backlog;
//! - an `accept` error (e.g. out of descriptors) is logged and retried after a pause
//!   instead of spinning.
//!
//! Why this holds `/healthz` (or any short request) within about a second, by default,
//! under a flood of idle connections: the flood's connections send nothing, so in the
//! waiting room they last [`FIRST_BYTES_WHEN_FULL`] each and the room drains the listen
//! backlog ([`LISTEN_BACKLOG`] deep) at (room size / 50 ms), about 2,000 a second with
//! the default cap; those it took while there was
//! still room sit idle and are displaced one by one as soon as they are a second old. A
//! separate health listener would need configuring to help, and a reserved slot alone is
//! taken by the flood too; displacing the longest-idle connection needs neither.
//! Below the cap nothing changes: connections wait their full header timeout, and a
//! connection over the cap still waits while the others are younger than a second
//! (`connections_over_the_cap_wait_until_one_closes` in the API tests).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use renzheng_app::settings::Limits;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// While the server is full, how long a newly accepted connection has to send its first
/// bytes before it is closed. A client sends its request right after the handshake (with
/// its last packet, on the same round trip), so this is generous; it is short because the
/// waiting room drains a listen backlog full of connections that send nothing at (room
/// size / this): 1,920 a second with the default cap.
pub const FIRST_BYTES_WHEN_FULL: Duration = Duration::from_millis(50);

/// While the server is full, how long a connection must have had no request in flight
/// before a newcomer with a request may take its place.
pub const EVICTABLE_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Descriptors kept for everything but client connections (database, model files, logs,
/// outbound fetches), at least; a tenth of the limit when that is more.
const RESERVED_DESCRIPTORS: u64 = 64;

/// How often a waiting newcomer looks again for a connection to displace when none is
/// idle (all are busy).
const RECHECK: Duration = Duration::from_millis(50);

/// Connections the kernel queues for `accept`. The standard library's 128 is too few:
/// when the queue is full the kernel drops new handshakes, and a client retries only after
/// a second, then three; the loop drains a deep queue quickly instead (see the module
/// documentation). The kernel caps it at `net.core.somaxconn` (4,096 on Linux 5.4+).
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds the listening socket on `addr`, with a [`LISTEN_BACKLOG`]-deep accept queue.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As the standard library's bind: a restarted server can listen again at once,
    // without waiting for its old connections' TIME_WAIT to pass.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// How the connections fit in the process's descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionBudget {
    /// Connections served at once (`limits.max_connections`, lowered to fit).
    pub slots: usize,
    /// Connections accepted beyond them while the server is full, to look for a request.
    pub room: usize,
}

impl ConnectionBudget {
    /// The budget for a cap of `max_connections` under an open-file limit of `file_limit`
    /// descriptors (`None`: unknown or unlimited).
    pub fn new(max_connections: usize, file_limit: Option<u64>) -> Self {
        let room_for = |slots: usize| (slots / 8).clamp(4, 128);
        let max_connections = max_connections.max(1);
        let wanted = ConnectionBudget {
            slots: max_connections,
            room: room_for(max_connections),
        };
        let Some(limit) = file_limit else {
            return wanted;
        };
        let available = limit.saturating_sub(RESERVED_DESCRIPTORS.max(limit / 10));
        let available = usize::try_from(available).unwrap_or(usize::MAX);
        if wanted.slots.saturating_add(wanted.room) <= available {
            return wanted;
        }
        // Lowered: a ninth of what is left for the waiting room, the rest served.
        let room = room_for(available / 9 * 8);
        ConnectionBudget {
            slots: available.saturating_sub(room).clamp(1, max_connections),
            room,
        }
    }
}

/// Raises the soft open-file limit toward the hard one; returns the soft limit now in
/// force (`None` where there is no such limit or it cannot be read).
#[cfg(unix)]
fn raise_file_limit() -> Option<u64> {
    // Not `u64::MAX`: with an unlimited hard limit Linux still refuses a soft limit above
    // `fs.nr_open` (1,048,576 by default).
    const TARGET: u64 = 1 << 20;
    match rlimit::increase_nofile_limit(TARGET) {
        Ok(soft) => Some(soft),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _hard)| soft)
        }
    }
}

#[cfg(not(unix))]
fn raise_file_limit() -> Option<u64> {
    None
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open connections
/// finish their requests for at most `grace`.
pub(crate) async fn serve<F>(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    shutdown: F,
    grace: Duration,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let file_limit = raise_file_limit();
    let budget = ConnectionBudget::new(limits.max_connections, file_limit);
    if budget.slots < limits.max_connections {
        tracing::warn!(
            configured = limits.max_connections,
            effective = budget.slots,
            waiting_room = budget.room,
            file_limit,
            "limits.max_connections lowered to fit the open-file limit; raise the limit \
             (e.g. systemd LimitNOFILE) to serve more connections"
        );
    }
    tracing::info!(
        max_connections = budget.slots,
        waiting_room = budget.room,
        file_limit,
        "accepting connections"
    );

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout())
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout())
        .keep_alive_timeout(limits.header_read_timeout());
    let server = Arc::new(Server {
        builder,
        router,
        header_timeout: limits.header_read_timeout(),
        slots: Arc::new(Semaphore::new(budget.slots)),
        connections: Connections::new(),
    });
    // Every accepted socket holds one of these: served or in the waiting room.
    let sockets = Arc::new(Semaphore::new(budget.slots + budget.room));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        // A socket permit first: with the room full too, clients wait in the kernel's
        // backlog, not in memory.
        let socket = tokio::select! {
            socket = sockets.clone().acquire_owned() => {
                socket.expect("the semaphore is never closed")
            }
            () = &mut shutdown => break,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; pausing");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let accepted_at = Instant::now();
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let server = server.clone();
        match server.slots.clone().try_acquire_owned() {
            Ok(slot) => {
                tokio::spawn(server.serve_connection(stream, accepted_at, watcher, slot, socket));
            }
            Err(_) => {
                tokio::spawn(async move {
                    if let Some(slot) = server.wait_for_room(&stream, accepted_at).await {
                        server
                            .serve_connection(stream, accepted_at, watcher, slot, socket)
                            .await;
                    }
                });
            }
        }
    }

    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; abandoning remaining requests");
    }
}

/// What every connection task shares.
struct Server {
    builder: Builder<TokioExecutor>,
    router: Router,
    header_timeout: Duration,
    /// One per connection served by hyper.
    slots: Arc<Semaphore>,
    connections: Arc<Connections>,
}

impl Server {
    /// For a connection accepted while every slot is taken: waits for its first bytes
    /// (briefly), then for a slot, displacing the longest-idle connection when there is
    /// one. `None`: the connection is to be closed.
    async fn wait_for_room(
        &self,
        stream: &TcpStream,
        accepted_at: Instant,
    ) -> Option<OwnedSemaphorePermit> {
        let mut first = [0u8; 1];
        match tokio::time::timeout(FIRST_BYTES_WHEN_FULL, stream.peek(&mut first)).await {
            Ok(Ok(n)) if n > 0 => {}
            // Nothing in time, end of stream, or an error: close.
            _ => return None,
        }
        let deadline = accepted_at + self.header_timeout;
        // One acquire for the whole wait, so that this newcomer keeps its place in line.
        let acquire = self.slots.clone().acquire_owned();
        tokio::pin!(acquire);
        loop {
            let next_look = match self.connections.evict_longest_idle(EVICTABLE_AFTER_IDLE) {
                // Its slot comes back when its task ends: wait for it (or the next).
                Eviction::Evicted | Eviction::NoneIdle => Instant::now() + RECHECK,
                Eviction::NotBefore(when) => when,
            };
            tokio::select! {
                slot = &mut acquire => return Some(slot.expect("the semaphore is never closed")),
                () = tokio::time::sleep_until(next_look.min(deadline)) => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                }
            }
        }
    }

    /// Serves one connection until it ends, is evicted or the server shuts down; the
    /// permits are released when it closes.
    async fn serve_connection(
        self: Arc<Self>,
        stream: TcpStream,
        accepted_at: Instant,
        watcher: Watcher,
        slot: OwnedSemaphorePermit,
        socket: OwnedSemaphorePermit,
    ) {
        let (state, _registered) = self.connections.register();
        // The peer's address rides along as axum's `ConnectInfo`: the console's sign-in
        // throttle counts per client.
        let peer = stream.peer_addr().ok().map(ConnectInfo);
        let io = FirstRequestDeadline {
            stream,
            state: state.clone(),
            deadline: Box::pin(tokio::time::sleep_until(accepted_at + self.header_timeout)),
        };
        let service = Tracked {
            inner: TowerToHyperService::new(self.router.clone().map_request(
                move |request: Request<Incoming>| {
                    let mut request = request.map(Body::new);
                    if let Some(peer) = peer {
                        request.extensions_mut().insert(peer);
                    }
                    request
                },
            )),
            state: state.clone(),
        };
        let connection = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        let connection = watcher.watch(connection);
        tokio::select! {
            // Errors here are the client's (reset, timeout, bad framing): nothing to log
            // above debug.
            ended = connection => if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            },
            () = state.evicted.notified() => {
                tracing::debug!("idle connection closed to make room");
            }
        }
        drop(slot);
        drop(socket);
    }
}

/// The connections being served, for choosing one to displace.
struct Connections {
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<ConnectionState>>>,
    /// When the last "full" warning was logged (ms since `epoch`, `u64::MAX`: never), and
    /// connections displaced since.
    last_warning_ms: AtomicU64,
    evicted_since_warning: AtomicU64,
}

/// What [`Connections::evict_longest_idle`] did.
enum Eviction {
    /// A connection was told to close.
    Evicted,
    /// The longest-idle connection may be displaced at this instant.
    NotBefore(Instant),
    /// Every connection has a request in flight.
    NoneIdle,
}

impl Connections {
    fn new() -> Arc<Self> {
        Arc::new(Connections {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            last_warning_ms: AtomicU64::new(u64::MAX),
            evicted_since_warning: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn register(self: &Arc<Self>) -> (Arc<ConnectionState>, Registered) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnectionState {
            connections: self.clone(),
            in_flight: AtomicU32::new(0),
            idle_since_ms: AtomicU64::new(self.now_ms()),
            first_request: AtomicBool::new(false),
            evicted: Notify::new(),
        });
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, state.clone());
        let registered = Registered {
            connections: self.clone(),
            id,
        };
        (state, registered)
    }

    /// Closes the connection that has had no request in flight for longest, if that is
    /// at least `min_idle`.
    fn evict_longest_idle(&self, min_idle: Duration) -> Eviction {
        let now_ms = self.now_ms();
        let min_idle_ms = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let longest = open
            .values()
            .filter(|c| c.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|c| c.idle_since_ms.load(Ordering::Acquire));
        let Some(victim) = longest else {
            return Eviction::NoneIdle;
        };
        let idle_since = victim.idle_since_ms.load(Ordering::Acquire);
        if now_ms.saturating_sub(idle_since) < min_idle_ms {
            return Eviction::NotBefore(
                self.epoch + Duration::from_millis(idle_since.saturating_add(min_idle_ms)),
            );
        }
        if !victim.try_evict() {
            // A request began meanwhile: look again at once.
            return Eviction::NotBefore(Instant::now());
        }
        drop(open);
        self.warn_full(now_ms);
        Eviction::Evicted
    }

    /// A warning a minute at most while connections are being displaced: the operator
    /// learns the server is full (an attack, or a cap too low for the load).
    fn warn_full(&self, now_ms: u64) {
        let evicted = self.evicted_since_warning.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        let due = last == u64::MAX || now_ms.saturating_sub(last) >= 60_000;
        if due
            && self
                .last_warning_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.evicted_since_warning.store(0, Ordering::Relaxed);
            tracing::warn!(
                evicted,
                "connections full: closing idle connections to serve new requests \
                 (limits.max_connections)"
            );
        }
    }
}

/// Removes its connection from [`Connections`] when the connection's task ends, however
/// it ends.
struct Registered {
    connections: Arc<Connections>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.connections
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// Set in [`ConnectionState::in_flight`] once the connection is being closed for room.
const EVICTED: u32 = 1 << 31;

/// One connection's requests, as the loop sees them.
struct ConnectionState {
    connections: Arc<Connections>,
    /// Requests whose response has not been sent completely, plus [`EVICTED`].
    in_flight: AtomicU32,
    /// When the last request finished (or the connection was accepted), ms since the
    /// epoch of [`Connections`].
    idle_since_ms: AtomicU64,
    /// Whether a request head has been read (the first-request deadline is off then).
    first_request: AtomicBool,
    /// Notified when the connection is to close.
    evicted: Notify,
}

impl ConnectionState {
    /// A request begins; `None` if the connection is being closed.
    fn begin(self: &Arc<Self>) -> Option<RequestInFlight> {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n & EVICTED == 0).then_some(n + 1)
            })
            .ok()?;
        self.first_request.store(true, Ordering::Release);
        Some(RequestInFlight(self.clone()))
    }

    /// Marks the connection closing, if no request is in flight.
    fn try_evict(&self) -> bool {
        let evicted = self
            .in_flight
            .compare_exchange(0, EVICTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if evicted {
            self.evicted.notify_one();
        }
        evicted
    }
}

/// A request in flight on its connection, until its response is sent (or dropped).
struct RequestInFlight(Arc<ConnectionState>);

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        // The time first, so that whoever sees the count at zero sees the new time.
        let now_ms = self.0.connections.now_ms();
        self.0.idle_since_ms.store(now_ms, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The socket, with a deadline on its reads until the first request head has been read:
/// this times out protocol detection and a first request that never comes, which
/// hyper's own header timer (HTTP/1 only, and only once detection is over) does not.
struct FirstRequestDeadline {
    stream: TcpStream,
    state: Arc<ConnectionState>,
    deadline: Pin<Box<Sleep>>,
}

impl AsyncRead for FirstRequestDeadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        // Only while waiting for bytes: a client sending steadily is hyper's to judge.
        if read.is_pending()
            && !this.state.first_request.load(Ordering::Acquire)
            && this.deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no request head within limits.header_read_timeout_ms",
            )));
        }
        read
    }
}

impl AsyncWrite for FirstRequestDeadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The router, counting its connection's requests in flight until each response's body
/// is sent.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    state: Arc<ConnectionState>,
}

impl<S> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let Some(in_flight) = self.state.begin() else {
            // Closed for room an instant ago: the connection is going away, so the
            // request is not started (the client sees the connection close).
            let mut response = Response::new(TrackedBody {
                inner: Body::empty(),
                in_flight: None,
            });
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            return Box::pin(async move { Ok(response) });
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| TrackedBody {
                inner,
                in_flight: Some(in_flight),
            }))
        })
    }
}

/// A response body that ends its request's time in flight when it ends (or is dropped).
struct TrackedBody {
    inner: Body,
    in_flight: Option<RequestInFlight>,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None | Some(Err(_)))) {
            this.in_flight = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_kept_when_it_fits() {
        let b = ConnectionBudget::new(768, Some(1024));
        assert_eq!(
            b,
            ConnectionBudget {
                slots: 768,
                room: 96
            }
        );
        assert_eq!(ConnectionBudget::new(768, None).slots, 768);
        assert_eq!(ConnectionBudget::new(768, Some(u64::MAX)).slots, 768);
    }

    #[test]
    fn the_cap_is_lowered_below_the_file_limit() {
        for limit in [256u64, 512, 900] {
            let b = ConnectionBudget::new(768, Some(limit));
            let reserve = 64.max(limit / 10);
            assert!(b.slots < 768, "{limit}: {b:?}");
            assert!(
                (b.slots + b.room) as u64 + reserve <= limit,
                "{limit}: {b:?}"
            );
            assert!(b.room >= 4, "{limit}: {b:?}");
        }
        // Absurdly low limits still serve someone.
        assert_eq!(ConnectionBudget::new(768, Some(10)).slots, 1);
    }
}
