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

use axum::{Router, serve::Listener};
use std::{
    future::Future,
    io,
    net::{SocketAddr, TcpStream as StdStream},
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot},
};

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
    stopped: Vec<oneshot::Receiver<io::Result<()>>>,
}

impl Workers {
    /// Starts `count` threads serving `app` with the connections `listener`
    /// accepts. Once `stop` resolves, the listener is closed and each thread
    /// finishes its in-flight requests.
    ///
    /// Must be called within a runtime, which runs the acceptor.
    pub fn start<S, F>(
        listener: TcpListener,
        count: usize,
        app: Router,
        stop: S,
    ) -> io::Result<Self>
    where
        S: Fn() -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let local = listener.local_addr()?;
        let count = count.max(1);
        let mut stopped = Vec::with_capacity(count);
        let mut queues = Vec::with_capacity(count);
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (queue, connections) = mpsc::unbounded_channel();
            let (done, stopped_rx) = oneshot::channel();
            let listener = Handed { connections, local };
            let app = app.clone();
            let stop = stop();
            std::thread::Builder::new()
                .name(format!("harpoon-worker-{index}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        let result = axum::serve(listener, app)
                            .with_graceful_shutdown(stop)
                            .await;
                        let _ = done.send(result);
                        // Keep driving what requests spawned here (strikes,
                        // MCP sessions, upstream connections) through the
                        // rest of shutdown; the process ends them by exiting.
                        std::future::pending::<()>().await;
                    });
                })?;
            queues.push(queue);
            stopped.push(stopped_rx);
        }
        tokio::spawn(accept(listener, queues, stop()));
        Ok(Self { stopped })
    }

    /// Resolves when every thread has stopped accepting and answered its
    /// in-flight requests; the first error any of them ended with.
    pub async fn stopped(self) -> io::Result<()> {
        let mut first = Ok(());
        for rx in self.stopped {
            let result = rx
                .await
                .unwrap_or_else(|_| Err(io::Error::other("a serving thread panicked")));
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}

/// Accepts until `stop`, handing connections to the threads in turn (with
/// keep-alive clients, connections are long-lived and counts stay even).
async fn accept(
    mut listener: TcpListener,
    mut queues: Vec<mpsc::UnboundedSender<(StdStream, SocketAddr)>>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut next = 0;
    loop {
        let (stream, peer) = tokio::select! {
            // axum's accept retries (and backs off on) accept errors itself.
            accepted = Listener::accept(&mut listener) => accepted,
            () = &mut stop => return,
        };
        // Answers go out as soon as they are written, not held back by
        // Nagle's algorithm waiting for the client's ACK of the previous segment.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on a connection");
        }
        // Leaves this runtime's reactor; the serving thread registers it with its own.
        let mut handed = match stream.into_std() {
            Ok(stream) => (stream, peer),
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

/// The connections the acceptor hands one serving thread.
struct Handed {
    connections: mpsc::UnboundedReceiver<(StdStream, SocketAddr)>,
    local: SocketAddr,
}

impl Listener for Handed {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Some((stream, peer)) = self.connections.recv().await else {
                // The acceptor has stopped: so has serving new connections.
                return std::future::pending().await;
            };
            match TcpStream::from_std(stream) {
                Ok(stream) => return (stream, peer),
                Err(e) => tracing::warn!(error = %e, "handed connection could not be registered"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
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

    fn app() -> Router {
        let name = || async { std::thread::current().name().unwrap_or_default().to_owned() };
        Router::new().route("/", get(name)).route(
            "/slow",
            get(move || async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                name().await
            }),
        )
    }

    fn started(count: usize) -> (Workers, SocketAddr, watch::Sender<bool>) {
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
        let workers = Workers::start(listener, count, app(), stop).unwrap();
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
