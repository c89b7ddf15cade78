//! Serving threads, one per core, each with its own single-threaded runtime.
//!
//! One acceptor hands each new connection to the threads in turn, and the
//! connection is then read, routed, sent upstream and answered on that
//! thread until it closes. On a work-stealing runtime the same request
//! crossed threads: the connection task woke the upstream client's
//! connection task, often on the other worker, and idle workers were woken
//! to look for work. Without those hand-offs a proxied request costs about
//! a fifth less CPU (docs/performance.md, "Session 4"). This is the shape
//! nginx and Envoy use: workers that share nothing per request.
//!
//! Tasks a request spawns (strikes, MCP sessions, upstream connections) live
//! on its thread, and every thread keeps running them until the process
//! exits, through the rest of shutdown.

use crate::connections::{Admitted, Connections, InFlight, Uploading};
use axum::{Router, body::Body};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use std::{
    future::Future,
    io,
    net::TcpStream as StdStream,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot, watch},
};
use tower::ServiceExt;

/// How many serving threads `requested` asks for: 0 means one per core the
/// process may use (cgroup CPU limits included).
pub fn count(requested: usize) -> usize {
    if requested > 0 {
        return requested;
    }
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Running serving threads.
#[derive(Debug)]
pub struct Workers {
    stopped: Vec<oneshot::Receiver<()>>,
}

impl Workers {
    /// Starts `count` threads serving `app` with the connections `listener`
    /// accepts, within the limits of `connections` (shared with any other
    /// listener). Once `stop` resolves, the listener is closed and each
    /// thread finishes its in-flight requests.
    ///
    /// Must be called within a runtime, which runs the acceptor.
    pub fn start<S, F>(
        listener: TcpListener,
        count: usize,
        app: Router,
        connections: Arc<Connections>,
        stop: S,
    ) -> io::Result<Self>
    where
        S: Fn() -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let count = count.max(1);
        let mut stopped = Vec::with_capacity(count);
        let mut queues = Vec::with_capacity(count);
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (queue, handed) = mpsc::unbounded_channel();
            let (done, stopped_rx) = oneshot::channel();
            let app = app.clone();
            let stop = stop();
            std::thread::Builder::new()
                .name(format!("harpoon-worker-{index}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        serve_thread(handed, app, stop).await;
                        let _ = done.send(());
                        // Keep driving what requests spawned here (strikes,
                        // MCP sessions, upstream connections) through the
                        // rest of shutdown; the process ends them by exiting.
                        std::future::pending::<()>().await;
                    });
                })?;
            queues.push(queue);
            stopped.push(stopped_rx);
        }
        tokio::spawn(accept(listener, queues, connections, stop()));
        Ok(Self { stopped })
    }

    /// Resolves when every thread has stopped accepting and answered its
    /// in-flight requests.
    pub async fn stopped(self) -> io::Result<()> {
        let mut result = Ok(());
        for rx in self.stopped {
            if rx.await.is_err() {
                result = Err(io::Error::other("a serving thread panicked"));
            }
        }
        result
    }
}

/// A connection on its way to a serving thread, with its place in the table.
type Handed = (StdStream, Admitted);

/// Accepts until `stop`, handing connections to the threads in turn (with
/// keep-alive clients, connections are long-lived and counts stay even).
async fn accept(
    listener: TcpListener,
    mut queues: Vec<mpsc::UnboundedSender<Handed>>,
    connections: Arc<Connections>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut next = 0;
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => return,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                backoff = Duration::ZERO;
                stream
            }
            Err(e) => {
                backoff = accept_failed(&e, backoff, &connections);
                if !backoff.is_zero() {
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {},
                        () = &mut stop => return,
                    }
                }
                continue;
            }
        };
        let Some(admitted) = connections.admit() else {
            // Every connection is busy answering: this one waits for nobody.
            continue;
        };
        // Answers go out as soon as they are written, not held back by
        // Nagle's algorithm waiting for the client's ACK of the previous segment.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on a connection");
        }
        // Leaves this runtime's reactor; the serving thread registers it with its own.
        let mut handed = match stream.into_std() {
            Ok(stream) => (stream, admitted),
            Err(e) => {
                tracing::warn!(error = %e, "accepted connection could not be handed over");
                continue;
            }
        };
        loop {
            if queues.is_empty() {
                tracing::error!("no serving thread is left; closing the listener");
                return;
            }
            next %= queues.len();
            match queues[next].send(handed) {
                Ok(()) => {
                    next += 1;
                    break;
                }
                Err(mpsc::error::SendError(back)) => {
                    tracing::error!("a serving thread has stopped; dealing to the others");
                    queues.remove(next);
                    handed = back;
                }
            }
        }
    }
}

/// What to do after a failed accept: how long to wait before the next.
/// A connection the client gave up on while queued is no reason to wait;
/// running out of descriptors or memory is, and closing idle connections
/// frees descriptors for the clients that want an answer.
fn accept_failed(e: &io::Error, backoff: Duration, connections: &Connections) -> Duration {
    use io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
        return Duration::ZERO;
    }
    // EMFILE / ENFILE: out of descriptors, process- or system-wide.
    if matches!(e.raw_os_error(), Some(24 | 23)) {
        let shed = connections.shed(16);
        tracing::warn!(error = %e, open = connections.open(), shed, "accept failed: out of file descriptors");
    } else {
        tracing::warn!(error = %e, "accept failed");
    }
    (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1))
}

/// One thread's serving loop: connections handed to it until `stop`, then
/// each finishes what it is answering.
async fn serve_thread(
    mut handed: mpsc::UnboundedReceiver<Handed>,
    app: Router,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let (stopping, stop_seen) = watch::channel(false);
    // Every connection task holds a clone; when all are dropped, all are done.
    let (all_done, done) = watch::channel(());
    loop {
        let next = tokio::select! {
            next = handed.recv() => next,
            () = &mut stop => break,
        };
        let Some((stream, admitted)) = next else {
            // The acceptor has stopped: wait for `stop` like the others.
            (&mut stop).await;
            break;
        };
        let stream = match TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "handed connection could not be registered");
                continue;
            }
        };
        let app = app.clone();
        let stop_seen = stop_seen.clone();
        let done = done.clone();
        tokio::spawn(async move {
            serve_connection(stream, admitted, app, stop_seen).await;
            drop(done);
        });
    }
    stopping.send_replace(true);
    drop(done);
    all_done.closed().await;
}

/// Answers one connection until the client closes it, it outstays the
/// timeouts, it is picked to make room, or shutdown has answered its request.
async fn serve_connection(
    stream: TcpStream,
    admitted: Admitted,
    app: Router,
    mut stopping: watch::Receiver<bool>,
) {
    let admitted = Arc::new(admitted);
    let io = TokioIo::new(Watched {
        stream,
        admitted: admitted.clone(),
    });
    let requests = admitted.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let in_flight = requests.begin_request();
        let request = request.map(|body| Body::new(Upload::new(body, &requests)));
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await;
            response.map(|r| {
                r.map(|body| {
                    Body::new(Answer {
                        body,
                        _in_flight: in_flight,
                    })
                })
            })
        }
    });
    // Head, body and idle timeouts are the table's (one deadline a
    // connection, whichever phase it is in): hyper's own header timer also
    // runs while a keep-alive connection idles, which would cut idle time to it.
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(connection);
    let evicted = admitted.evicted();
    let check = tokio::time::sleep_until(admitted.next_check().into());
    let stop = async move { stopping.wait_for(|stop| *stop).await.is_ok() };
    tokio::pin!(evicted, check, stop);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = &mut evicted => return,
            () = &mut check => {
                if admitted.expired().is_some() {
                    return;
                }
                check.as_mut().reset(admitted.next_check().into());
            }
            stop = &mut stop, if !shutting_down => {
                shutting_down = true;
                if stop {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A request's body, counted as arriving until its end has been read or it
/// is dropped, so a client trickling it is held to the body timeout.
struct Upload {
    body: Incoming,
    uploading: Option<Uploading>,
}

impl Upload {
    fn new(body: Incoming, admitted: &Admitted) -> Self {
        let uploading = (!body.is_end_stream()).then(|| admitted.begin_upload());
        Self { body, uploading }
    }
}

impl HttpBody for Upload {
    type Data = <Incoming as HttpBody>::Data;
    type Error = <Incoming as HttpBody>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) || this.body.is_end_stream() {
            this.uploading = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An answer's body, holding its request's place in flight until sent or dropped.
struct Answer {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Answer {
    type Data = <Body as HttpBody>::Data;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The client's socket, telling the table when bytes arrive (a request
/// head begins).
struct Watched {
    stream: TcpStream,
    admitted: Arc<Admitted>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.admitted.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::watch;

    /// One HTTP/1.1 GET on an open connection; the answer's status and body.
    async fn get_on(conn: &mut TcpStream, path: &str) -> (u16, String) {
        let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        loop {
            let mut chunk = [0u8; 1024];
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed mid-answer");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            let Some((head, body)) = text.split_once("\r\n\r\n") else {
                continue;
            };
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.parse().ok())
                .unwrap();
            if body.len() >= length {
                let status = head[9..12].parse().unwrap();
                return (status, body[..length].to_owned());
            }
        }
    }

    /// CPU time this thread has used, in clock ticks (Linux only).
    fn thread_cpu_ticks() -> u64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_name.split(' ').collect();
        // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    fn app() -> Router {
        let name = || async { std::thread::current().name().unwrap_or_default().to_owned() };
        Router::new()
            .route("/", get(name))
            .route(
                "/slow",
                get(move || async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    name().await
                }),
            )
            .route(
                // The connection's task runs on the handler's thread: what
                // the thread burns while the answer waits is the serving loop's.
                "/cpu",
                get(|| async {
                    let before = thread_cpu_ticks();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    (thread_cpu_ticks() - before).to_string()
                }),
            )
    }

    fn started(count: usize) -> (Workers, SocketAddr, watch::Sender<bool>) {
        started_with(count, Duration::from_secs(5))
    }

    fn started_with(
        count: usize,
        timeouts: Duration,
    ) -> (Workers, SocketAddr, watch::Sender<bool>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = watch::channel(false);
        let stop = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        let listener = TcpListener::from_std(listener).unwrap();
        let connections = Connections::new(crate::connections::Limits {
            max: 64,
            header_read: timeouts,
            body_read: timeouts,
            keep_alive: timeouts,
        });
        let workers = Workers::start(listener, count, app(), connections, stop).unwrap();
        (workers, addr, stop_tx)
    }

    #[tokio::test]
    async fn connections_are_dealt_in_turn_and_answered_where_they_landed() {
        let (_workers, addr, _stop) = started(2);
        let mut served = Vec::new();
        for _ in 0..4 {
            let mut conn = TcpStream::connect(addr).await.unwrap();
            let (status, first) = get_on(&mut conn, "/").await;
            assert_eq!(status, 200);
            for _ in 0..3 {
                assert_eq!(
                    get_on(&mut conn, "/").await.1,
                    first,
                    "a connection moved threads"
                );
            }
            served.push(first);
        }
        assert_eq!(
            served,
            [
                "harpoon-worker-0",
                "harpoon-worker-1",
                "harpoon-worker-0",
                "harpoon-worker-1"
            ]
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn an_answer_longer_than_the_timeouts_neither_closes_nor_busies_the_connection() {
        let (_workers, addr, _stop) = started_with(1, Duration::from_millis(50));
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let (status, ticks) = get_on(&mut conn, "/cpu").await;
        assert_eq!(status, 200);
        // 500 ms spinning would be about 50 ticks; waiting costs none.
        let ticks: u64 = ticks.parse().unwrap();
        assert!(ticks <= 10, "{ticks} ticks of CPU while the answer waited");
    }

    #[tokio::test]
    async fn stopping_answers_requests_in_flight_and_refuses_new_connections() {
        let (workers, addr, stop) = started(2);
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let in_flight = tokio::spawn(async move { get_on(&mut conn, "/slow").await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send_replace(true);
        let (status, body) = in_flight.await.unwrap();
        assert_eq!(status, 200);
        assert!(body.starts_with("harpoon-worker-"), "{body}");
        tokio::time::timeout(Duration::from_secs(5), workers.stopped())
            .await
            .expect("threads stop once their connections are answered")
            .unwrap();
        let refused = async {
            while TcpStream::connect(addr).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), refused)
            .await
            .expect("the listening socket is closed after stop");
    }
}
