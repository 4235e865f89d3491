//! Starting and stopping the server.

use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use wharf_api::{AppState, router};
use wharf_hub::{Hub, HubConfig};

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WHARF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub async fn run_server(
    data: &Path,
    listen: &str,
    public_url: Option<String>,
    xet_convert_delay: std::time::Duration,
) -> Result<()> {
    init_tracing();
    let first_start = !data.join("wharf.db").exists();
    let hub = Hub::open(&HubConfig {
        data_dir: data.to_path_buf(),
    })
    .await
    .with_context(|| format!("cannot open the data folder {}", data.display()))?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    if first_start {
        let d = data.display();
        eprintln!("Wharf: new data folder {d}. Create the first user and a token with:");
        eprintln!("  wharf --data {d} user add NAME --email EMAIL --password PASSWORD");
        eprintln!("  wharf --data {d} token add NAME --role write");
        eprintln!("then: HF_ENDPOINT=http://{listen} hf auth login --token <token>");
    }
    let hub = Arc::new(hub);
    // Converts LFS objects into Xet storage in the background (one at a time).
    hub.start_xet_worker(xet_convert_delay);
    let state = AppState { hub, public_url };
    serve(listener, state, shutdown_signal()).await
}

/// Serves on an already bound listener until `shutdown` completes (tests bind port 0 first).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "wharf listening");
    // Streamed responses (git packs, LFS objects) end with a small chunk; without NODELAY
    // Nagle's algorithm holds it until the client's delayed ACK, about 40 ms per request.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    // The web pages register no route the API owns; the API router keeps the only fallback.
    let web = wharf_web::router(state.hub.clone(), state.public_url.clone());
    axum::serve(listener, router(state).merge(web))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}
