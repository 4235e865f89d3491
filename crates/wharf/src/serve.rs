//! Starting and stopping the server.

use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use wharf_api::{AppState, router};
use wharf_http::ClientConfig;
use wharf_hub::{Hub, HubConfig, RateLimits};

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
    inference: InferenceArgs,
    edge: EdgeArgs,
) -> Result<()> {
    init_tracing();
    let first_start = !data.join("wharf.db").exists();
    let hub = Hub::open(&HubConfig {
        data_dir: data.to_path_buf(),
    })
    .await
    .with_context(|| format!("cannot open the data folder {}", data.display()))?;
    // Settles what a crash of the previous server left (see wharf_hub::fsck), and holds the
    // data folder's serve.lock for as long as this server runs.
    let _startup = hub
        .reconcile_at_start()
        .await
        .context("start-up reconciliation failed")?;
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
    configure_inference(&hub, &inference);
    hub.rate_limiter.configure(edge.rate_limits);
    let hub = Arc::new(hub);
    // Converts LFS objects into Xet storage in the background (one at a time).
    hub.start_xet_worker(xet_convert_delay);
    let state = AppState { hub, public_url };
    let client = ClientConfig {
        trust_proxy: edge.trust_proxy,
    };
    serve(listener, state, client, shutdown_signal()).await
}

/// `serve`'s settings of the edge: rate limits and where client addresses come from.
#[derive(clap::Args, Debug, Clone)]
pub struct EdgeArgs {
    /// Rate limits: `off`, or any of `api=N,resolvers=N,pages=N,auth=N,window=SECS`
    /// (requests per client per window; failed sign-ins per account per window).
    #[arg(long, env = "WHARF_RATE_LIMITS", default_value = "", value_parser = parse_rate_limits)]
    pub rate_limits: RateLimits,
    /// The server runs behind a reverse proxy: take the client's address from the last
    /// `X-Forwarded-For` entry.
    #[arg(long, env = "WHARF_TRUST_PROXY")]
    pub trust_proxy: bool,
}

fn parse_rate_limits(s: &str) -> std::result::Result<RateLimits, String> {
    RateLimits::parse(s)
}

/// `serve`'s switches of the hosted inference API.
#[derive(clap::Args, Debug, Clone)]
pub struct InferenceArgs {
    /// Switch the inference API off (as does WHARF_INFERENCE=off).
    #[arg(long)]
    pub no_inference: bool,
    /// The inference API on or off.
    #[arg(long = "inference", env = "WHARF_INFERENCE", default_value = "on",
          value_parser = parse_switch, action = clap::ArgAction::Set)]
    pub inference: bool,
    /// Memory for loaded models, in bytes (or with K, M, G, KiB, MiB, GiB); least recently
    /// used models are dropped beyond it.
    #[arg(long, env = "WHARF_INFERENCE_MEMORY", default_value = "2GiB", value_parser = parse_bytes)]
    pub inference_memory: u64,
    /// Inference requests computed at once (each on its own thread).
    #[arg(long, env = "WHARF_INFERENCE_WORKERS", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub inference_workers: u16,
}

impl InferenceArgs {
    fn enabled(&self) -> bool {
        self.inference && !self.no_inference
    }
}

fn parse_switch(s: &str) -> std::result::Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(format!("expected on or off, got '{s}'")),
    }
}

/// `2GiB`, `512MB`, `1500000`: a byte count with an optional decimal or binary suffix.
fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("not a byte count: '{s}'"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown unit in '{s}' (use K, M, G, KiB, MiB or GiB)"
            ));
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("'{s}' is too large"))
}

#[cfg(feature = "inference")]
fn configure_inference(hub: &Hub, args: &InferenceArgs) {
    let config = wharf_hub::InferenceConfig {
        enabled: args.enabled(),
        memory_budget: args.inference_memory,
        workers: usize::from(args.inference_workers),
    };
    tracing::info!(
        enabled = config.enabled,
        memory_mb = config.memory_budget >> 20,
        workers = config.workers,
        "inference API"
    );
    hub.configure_inference(config);
}

#[cfg(not(feature = "inference"))]
fn configure_inference(_hub: &Hub, args: &InferenceArgs) {
    if args.enabled() {
        tracing::info!("this server was built without the inference API");
    }
}

/// Serves on an already bound listener until `shutdown` completes (tests bind port 0 first).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    client: ClientConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = listener.local_addr()?;
    crate::listener::raise_open_file_limit();
    tracing::info!(%addr, "wharf listening");
    // The web pages register no route the API owns; the API router keeps the only fallback.
    let web = wharf_web::router(state.hub.clone(), state.public_url.clone());
    let hub = state.hub.clone();
    // Outermost last: the client's address is known before limits are counted.
    let app = router(state)
        .merge(web)
        .layer(axum::middleware::from_fn_with_state(
            hub,
            wharf_http::limits::rate_limit,
        ))
        .layer(axum::middleware::from_fn(
            wharf_http::security::security_headers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            client,
            wharf_http::client::client_addr,
        ));
    crate::listener::serve_connections(listener, app, shutdown).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_parse() {
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("512 MB"), Ok(512_000_000));
        assert_eq!(parse_bytes("1500"), Ok(1500));
        assert!(parse_bytes("lots").is_err() && parse_bytes("3 parsecs").is_err());
        assert!(parse_bytes("99999999999999999999G").is_err());
    }

    #[test]
    fn switches_parse() {
        assert_eq!(parse_switch("OFF"), Ok(false));
        assert_eq!(parse_switch("on"), Ok(true));
        assert!(parse_switch("maybe").is_err());
    }
}
