//! `tutti serve` and `tutti accounts create`: the server's wiring.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tutti_api::AppState;
use tutti_conference::ConferenceService;
use tutti_engine::{Engine, EngineConfig};
use tutti_store::{PostgresOptions, PostgresStore, SqliteStore, Store};
use tutti_webrtc::WebRtcEndpoint;

use crate::config::Config;
use crate::media::EngineMedia;
use crate::prompts::{PromptSettings, Prompts};
use tutti_conference::outbound::OutboundPolicy;

/// A folder beside the database: `recordings/`, `prompts/`.
fn data_folder(config: &Config, name: &str) -> std::path::PathBuf {
    config
        .storage
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| std::path::PathBuf::from(name), |p| p.join(name))
}

/// The media plane for `engine` (none for account administration).
fn media_plane(
    config: &Config,
    engine: Option<Arc<Engine>>,
    webrtc: Option<WebRtcEndpoint>,
    outbound: &OutboundPolicy,
) -> Arc<EngineMedia> {
    let recordings = data_folder(config, "recordings");
    let mut prompts = PromptSettings::new(
        config.prompts.dir.clone(),
        data_folder(config, "prompts"),
        recordings.clone(),
    );
    prompts.outbound = outbound.clone();
    prompts.connect_timeout = Duration::from_secs(config.fetch.connect_timeout_seconds);
    prompts.timeout = Duration::from_secs(config.fetch.timeout_seconds);
    prompts.max_bytes = config.fetch.max_bytes;
    prompts.max_redirects = config.fetch.max_redirects;
    prompts.cache_entries = config.prompts.cache_entries;
    prompts.cache_bytes = config.prompts.cache_megabytes.saturating_mul(1024 * 1024);
    Arc::new(EngineMedia {
        engine,
        webrtc,
        ice_servers: serde_json::to_value(&config.webrtc.ice_servers)
            .unwrap_or_else(|_| serde_json::json!([])),
        recordings,
        prompts: Prompts::new(prompts),
        recorders: Default::default(),
        cluster: std::sync::OnceLock::new(),
    })
}

/// The store: PostgreSQL when `storage.url` is set (this node's webhook deliveries are those of
/// `http.node`), else the SQLite file `storage.path`.
fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(url) = &config.storage.url {
        let options = PostgresOptions {
            node: config.http.node.clone(),
            pool_size: config.storage.pool_size,
            ..PostgresOptions::default()
        };
        let store = PostgresStore::connect(url, options).with_context(|| {
            format!(
                "opening the PostgreSQL store at {}",
                config.storage.redacted_url().unwrap_or_default()
            )
        })?;
        return Ok(Arc::new(store));
    }
    if let Some(folder) = config
        .storage
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating {}", folder.display()))?;
    }
    let store = SqliteStore::open(&config.storage.path)
        .with_context(|| format!("opening {}", config.storage.path.display()))?;
    Ok(Arc::new(store))
}

fn init_logging(config: &Config) {
    // The SIP stack logs every message at info; tutti's own SIP log says what calls do.
    let level = if config.log.level.contains("rsipstack") {
        config.log.level.clone()
    } else {
        format!("{},rsipstack=warn", config.log.level)
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rsipstack=warn"));
    // Colours only on a terminal: a log file or a journal gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if config.log.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Opens the WebRTC port when `[webrtc]` is enabled. Browsers are given one host candidate:
/// `webrtc.public_address`, else `media.public_address`.
fn start_webrtc(config: &Config, engine: &Arc<Engine>) -> anyhow::Result<Option<WebRtcEndpoint>> {
    if !config.webrtc.enabled {
        return Ok(None);
    }
    let candidate = config
        .webrtc
        .public_address
        .unwrap_or(config.media.public_address);
    if candidate.is_unspecified() {
        anyhow::bail!(
            "webrtc.public_address (or media.public_address) must be an address browsers can reach, not {candidate}"
        );
    }
    let endpoint = WebRtcEndpoint::start(&config.webrtc, candidate, engine.clone())
        .context("starting WebRTC")?;
    tracing::info!(
        listen = %config.webrtc.listen,
        candidate = %std::net::SocketAddr::new(candidate, endpoint.local_port()),
        "WebRTC is listening"
    );
    Ok(Some(endpoint))
}

/// Runs the server until SIGTERM or Ctrl-C; logs `warnings` about the configuration first.
pub fn serve(config: Config, warnings: &[String]) -> anyhow::Result<()> {
    init_logging(&config);
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let store = open_store(&config)?;
    let media = &config.media;
    let engine = Engine::start(EngineConfig {
        mixer_threads: if media.mixer_threads == 0 {
            EngineConfig::default().mixer_threads
        } else {
            media.mixer_threads
        },
        ports: media.port_first..=media.port_last,
        bind_address: media.bind_address,
        public_address: media.public_address,
        latching: media.latching,
        nat_any_source: media.nat_any_source,
        unproven_send_window: Duration::from_millis(media.unproven_send_ms),
        rtp_timeout: Duration::from_secs(media.rtp_timeout_seconds),
        batch_sends: media.batch_sends,
        raise_priority: media.raise_priority,
        opus: media.opus.encoder_settings()?,
        ..EngineConfig::default()
    })
    .context("starting the media engine")?;
    let engine = Arc::new(engine);
    let engine_events = engine.events().clone();
    let webrtc = start_webrtc(&config, &engine)?;
    let outbound = config.outbound()?;
    let media_plane = media_plane(&config, Some(engine), webrtc, &outbound);
    let membership = crate::cluster::start(&config, &media_plane)?;
    let shared_store = store.clone();
    let service = ConferenceService::with_outbound(
        store,
        media_plane.clone(),
        Duration::from_secs(config.auth.token_lifetime_seconds),
        outbound.clone(),
    );
    if let Some(membership) = &membership {
        membership.attach(&service)?;
    }
    service.restore().context("restoring conference state")?;
    crate::media::pump_events(engine_events, service.clone(), media_plane.clone())
        .context("starting the event pump")?;
    let state = AppState::new(service.clone(), config.http.node.clone())
        .with_login_limit(config.auth.login_limit())
        .with_room_series(config.metrics.room_series);
    // What the process records with the `metrics` macros anywhere shows in /metrics too.
    if !state.metrics.install_global() {
        tracing::warn!(
            "another metrics recorder is global: what is recorded outside the API's scrape does not show in /metrics"
        );
    }
    tutti_store::describe_metrics();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("listening on {}", config.http.listen))?;
        tracing::info!(address = %listener.local_addr()?, "tutti is serving");
        service.spawn_scheduler();
        let webhooks = tutti_api::webhooks::WebhookSender::start_with_outbox(
            tutti_api::webhooks::WebhookConfig {
                outbound: outbound.clone(),
                ..Default::default()
            },
            service.clone(),
        );
        tutti_api::spawn_notifier(service.clone(), webhooks.clone())
            .context("starting the notifier")?;
        if let Some(membership) = &membership {
            membership.attach_webhooks(&service, webhooks.clone());
        }
        let sip = if config.sip.enabled {
            Some(
                tutti_sip::SipServer::start(config.sip.clone(), service.clone())
                    .await
                    .context("starting SIP")?,
            )
        } else {
            None
        };
        let mut state = state.with_webhooks(webhooks);
        let sip_counters = sip.as_ref().map(|sip| sip.counters());
        let media = media_plane.clone();
        let proxy = membership
            .as_ref()
            .map(|m| crate::cluster::proxy::Proxy::new(m.cluster.clone(), shared_store.clone()))
            .transpose()?;
        let cluster_metrics = proxy.clone();
        state = state.with_metrics_source(Arc::new(move || {
            if let Some(sip) = &sip_counters {
                sip.record();
            }
            if let Some(webrtc) = &media.webrtc {
                webrtc.record_metrics();
            }
            if let Some(cluster) = &cluster_metrics {
                cluster.record_metrics();
            }
        }));
        let mut app = tutti_api::router(state.clone());
        if let Some(proxy) = &proxy {
            app = app.layer(axum::middleware::from_fn_with_state(
                proxy.clone(),
                crate::cluster::proxy::route,
            ));
        }
        let served = tutti_api::serve_app(listener, &state, app, ending(service.clone()))
            .await
            .context("serving HTTP");
        if let Some(sip) = sip {
            sip.shutdown().await;
        }
        served
    })?;
    if let Some(membership) = &membership {
        // The rooms have ended: this node's placements go, and the others stop counting it.
        membership.cluster.stop();
    }
    tracing::info!("stopping the media engine");
    drop(runtime);
    // The WebRTC endpoint's thread ends first: it holds the engine too.
    if let Ok(media) = Arc::try_unwrap(media_plane) {
        drop(media.webrtc);
        if let Some(engine) = media.engine.and_then(|e| Arc::try_unwrap(e).ok()) {
            engine.shutdown();
        }
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// Resolves when the server should stop, after ending every room so that websocket and
/// webhook subscribers still hear the participants leave.
async fn ending(service: Arc<ConferenceService>) {
    shutdown_signal().await;
    let ended = tokio::task::spawn_blocking(move || service.end_all_rooms()).await;
    tracing::info!(rooms = ended.unwrap_or(0), "rooms ended");
    // Let websocket writers send what the rooms' ends produced before connections close.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// Creates an account; prints its id and API key.
#[allow(clippy::print_stdout)]
pub fn create_account(config: Config, name: &str) -> anyhow::Result<()> {
    let store = open_store(&config)?;
    let outbound = config.outbound()?;
    let service = ConferenceService::with_outbound(
        store,
        media_plane(&config, None, None, &outbound),
        Duration::from_secs(config.auth.token_lifetime_seconds),
        outbound,
    );
    let account = service
        .create_account(name)
        .context("creating the account")?;
    println!("account_id: {}", account.id.simple());
    println!("api_key: {}", account.api_key);
    Ok(())
}

/// The config file from `--config` or `TUTTI_CONFIG`.
pub fn config_path(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| std::env::var_os("TUTTI_CONFIG").map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_postgresql_is_named_without_its_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let url = format!("postgres://tutti:hunter2@127.0.0.1:{port}/tutti");
        let (config, _) = Config::load(None, [("TUTTI_STORAGE_URL".to_owned(), url)]).unwrap();
        let Err(error) = open_store(&config) else {
            panic!("nothing listens on port {port}");
        };
        let message = format!("{error:#}");
        assert!(
            message.contains(&format!("postgres://tutti:***@127.0.0.1:{port}/tutti")),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }
}
