//! Accepting connections, with the bounds axum's own `serve` does not set: a client has 30 s
//! to send a request's headers (slow-header attacks hold nothing longer), headers are capped
//! at 64 KiB (431 beyond), at most [`MAX_CONNECTIONS`] connections are served at once (more
//! wait in the kernel's backlog), and a request body that sends nothing for 60 s is cut off.
//! Each request carries the peer address (`ConnectInfo`) for limits and download counts.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 4096;
/// Time to send a request's headers (and, on a kept-alive connection, to start the next one).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Longest silence inside a request body.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long open connections may finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(30);

/// Raises the soft limit of open files to the hard one: each connection is a file, and the
/// usual soft default (1,024) would refuse connections long before [`MAX_CONNECTIONS`].
pub fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    if current.current >= current.maximum {
        return;
    }
    let raised = Rlimit {
        current: current.maximum,
        maximum: current.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::info!(limit = ?current.maximum, "open file limit raised"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open file limit"),
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open connections finish.
pub async fn serve_connections(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        BODY_IDLE_TIMEOUT,
    ));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Streamed responses end with a small chunk; without NODELAY Nagle's algorithm holds
        // it until the client's delayed ACK, about 40 ms per request.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let app = app.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            serve_one(tcp, peer, app, &mut stop).await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot: all slots back means all connections are done.
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(all)).await;
    Ok(())
}

/// One connection, HTTP/1.1 with keep-alive, until it ends or the server stops.
async fn serve_one(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    stop: &mut watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        // The read buffer must hold the largest header block; the same bound caps what a
        // response queues for a slow reader (a download holds this plus a chunk or two).
        .max_buf_size(MAX_HEADER_BYTES.max(8192) * 2)
        .max_header_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    let conn = builder
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        }
        () = stopped(stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves once the server is told to stop (or the signal is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}
