//! `tutti serve` settings: defaults, then the TOML file, then `TUTTI_*` variables, then flags.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use tutti_conference::outbound::OutboundPolicy;
use tutti_engine::tutti_codec::{EncoderSettings, OpusApplication, OpusBandwidth};
use tutti_engine::EngineConfig;

/// Everything `tutti` reads at start-up.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP API.
    pub http: HttpConfig,
    /// Media plane.
    pub media: MediaConfig,
    /// Persistence.
    pub storage: StorageConfig,
    /// Authentication.
    pub auth: AuthConfig,
    /// Logging.
    pub log: LogConfig,
    /// Which URLs tenants may have the server call (prompts, webhooks, callbacks).
    pub fetch: FetchConfig,
    /// Prompt files and the cache of fetched ones.
    pub prompts: PromptsConfig,
    /// SIP: dial-in, dial-out, trunks.
    pub sip: tutti_sip::SipConfig,
    /// WebRTC: browsers over WHIP, WHEP and the join page.
    pub webrtc: tutti_webrtc::WebRtcConfig,
    /// Several nodes sharing one PostgreSQL.
    pub cluster: crate::cluster::ClusterSettings,
    /// `/metrics`.
    pub metrics: MetricsConfig,
}

/// `[metrics]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Rooms with a `tutti_room_participants` series of their own (the largest); the others
    /// are summed into `room="other"`.
    pub room_series: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            room_series: tutti_api::DEFAULT_ROOM_SERIES,
        }
    }
}

/// `[fetch]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// Hosts called whatever their addresses (`name`, `name:port`, an IP address).
    pub allow_hosts: Vec<String>,
    /// Longest wait for a prompt fetch's connection.
    pub connect_timeout_seconds: u64,
    /// Longest a prompt fetch may take in all.
    pub timeout_seconds: u64,
    /// Largest prompt fetched.
    pub max_bytes: u64,
    /// Redirects a prompt fetch follows.
    pub max_redirects: u32,
}

/// `[prompts]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PromptsConfig {
    /// The media directory: tenants name its files by plain name.
    pub dir: PathBuf,
    /// Fetched prompts kept, decoded.
    pub cache_entries: usize,
    /// Memory for them, MiB of decoded audio.
    pub cache_megabytes: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            allow_hosts: Vec::new(),
            connect_timeout_seconds: 5,
            timeout_seconds: 15,
            max_bytes: 8 * 1024 * 1024,
            max_redirects: 3,
        }
    }
}

impl Default for PromptsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./media"),
            cache_entries: 128,
            cache_megabytes: 128,
        }
    }
}

/// `[http]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Node name.
    pub node: String,
}

/// `[media]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// First media port.
    pub port_first: u16,
    /// Last media port.
    pub port_last: u16,
    /// Bind address of media sockets.
    pub bind_address: IpAddr,
    /// Address in SDP answers.
    pub public_address: IpAddr,
    /// Mixer threads (0: one per core).
    pub mixer_threads: usize,
    /// Latching.
    pub latching: bool,
    /// Let any host latch onto a caller whose offer names a private address.
    pub nat_any_source: bool,
    /// Milliseconds media may go to an offer's address before the caller proves it.
    pub unproven_send_ms: u64,
    /// RTP inactivity timeout.
    pub rtp_timeout_seconds: u64,
    /// Send to callers who do not latch from one port per mixer thread, in batches.
    pub batch_sends: bool,
    /// Run mixer threads at a raised priority when the process may.
    pub raise_priority: bool,
    /// How mixes are coded for Opus listeners.
    pub opus: OpusConfig,
}

/// `[media.opus]`: the encoder of what Opus listeners receive.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OpusConfig {
    /// `audio` (CELT, cheapest at the bitrates a mix is sent at) or `voip` (SILK/hybrid).
    pub mode: String,
    /// Target bitrate, bits per second (6000–510000).
    pub bitrate: u32,
    /// 0 (fastest) to 10 (best).
    pub complexity: u8,
    /// The widest band coded: `narrowband`, `wideband`, `superwideband` or `fullband`.
    pub bandwidth: String,
    /// In-band forward error correction toward listeners whose offer says `useinbandfec=1`
    /// (they are sent SILK, which carries it).
    pub fec: bool,
    /// Discontinuous transmission during silence.
    pub dtx: bool,
}

impl Default for OpusConfig {
    fn default() -> Self {
        let engine = EngineConfig::default().opus;
        Self {
            mode: engine.application.name().into(),
            bitrate: engine.bitrate,
            complexity: engine.complexity,
            bandwidth: engine.max_bandwidth.name().into(),
            fec: engine.inband_fec,
            dtx: engine.dtx,
        }
    }
}

impl OpusConfig {
    /// The engine's encoder settings; the error names the setting that is out of range.
    pub fn encoder_settings(&self) -> anyhow::Result<EncoderSettings> {
        let Some(application) = OpusApplication::from_name(&self.mode) else {
            bail!(
                "media.opus.mode is {:?}: it must be \"audio\" or \"voip\"",
                self.mode
            );
        };
        let Some(max_bandwidth) = OpusBandwidth::from_name(&self.bandwidth) else {
            bail!(
                "media.opus.bandwidth is {:?}: it must be \"narrowband\", \"wideband\", \
                 \"superwideband\" or \"fullband\"",
                self.bandwidth
            );
        };
        if !(6_000..=510_000).contains(&self.bitrate) {
            bail!(
                "media.opus.bitrate ({}) must be between 6000 and 510000",
                self.bitrate
            );
        }
        if self.complexity > 10 {
            bail!(
                "media.opus.complexity ({}) must be between 0 and 10",
                self.complexity
            );
        }
        Ok(EncoderSettings {
            application,
            bitrate: self.bitrate,
            complexity: self.complexity,
            inband_fec: self.fec,
            dtx: self.dtx,
            max_bandwidth,
            ..EngineConfig::default().opus
        })
    }
}

/// `[storage]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// SQLite file (also the folder beside which recordings and fetched prompts go).
    pub path: PathBuf,
    /// A PostgreSQL URL (`postgres://user:password@host:port/database`): when set, the store
    /// is there instead of in `path`, shared by every node given the same URL.
    pub url: Option<String>,
    /// Most connections to PostgreSQL.
    pub pool_size: u32,
}

impl StorageConfig {
    /// `url` with its password (in the user part or a `password` parameter) replaced by
    /// `***`, for messages and logs.
    pub fn redacted_url(&self) -> Option<String> {
        let url = self.url.as_deref()?;
        let Ok(mut parsed) = url::Url::parse(url) else {
            return Some("(a URL that does not parse)".to_owned());
        };
        if parsed.password().is_some() {
            let _ = parsed.set_password(Some("***"));
        }
        if parsed.query_pairs().any(|(key, _)| key == "password") {
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(key, value)| {
                    let value = if key == "password" {
                        "***".into()
                    } else {
                        value
                    };
                    (key.into_owned(), value.into_owned())
                })
                .collect();
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
        }
        Some(parsed.to_string())
    }
}

/// `[auth]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Token lifetime.
    pub token_lifetime_seconds: u64,
    /// Failed logins a client address may make in a row.
    pub login_failures: u32,
    /// The period over which `login_failures` drain away.
    pub login_window_seconds: u64,
}

impl AuthConfig {
    /// The API's login limit.
    pub fn login_limit(&self) -> tutti_api::LoginLimit {
        tutti_api::LoginLimit {
            failures: self.login_failures,
            per: std::time::Duration::from_secs(self.login_window_seconds),
            ..tutti_api::LoginLimit::default()
        }
    }
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Level or filter.
    pub level: String,
    /// JSON lines.
    pub json: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            node: "tutti@localhost".into(),
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            port_first: 20_000,
            port_last: 29_999,
            bind_address: IpAddr::from([0, 0, 0, 0]),
            public_address: IpAddr::from([127, 0, 0, 1]),
            mixer_threads: 0,
            latching: true,
            nat_any_source: false,
            unproven_send_ms: 2000,
            rtp_timeout_seconds: 30,
            batch_sends: true,
            raise_priority: true,
            opus: OpusConfig::default(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("./data/tutti.db"),
            url: None,
            pool_size: 8,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        let limit = tutti_api::LoginLimit::default();
        Self {
            token_lifetime_seconds: 3600,
            login_failures: limit.failures,
            login_window_seconds: limit.per.as_secs(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            json: false,
        }
    }
}

fn parse<T: std::str::FromStr>(name: &str, value: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e| anyhow::anyhow!("{name}={value:?}: {e}"))
}

impl Config {
    /// Reads `path` (when given) over the defaults, then applies `TUTTI_*` variables; also
    /// returns warnings for the `TUTTI_*` variables that name no setting (Kubernetes sets
    /// `TUTTI_SERVICE_HOST`, `TUTTI_PORT`… for a service named tutti, so they are not fatal).
    /// A setting's bad value is.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<(Self, Vec<String>)> {
        let mut warnings = Vec::new();
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("{}", path.display()))?
            }
            None => Config::default(),
        };
        for (name, value) in env {
            let Some(key) = name.strip_prefix("TUTTI_") else {
                continue;
            };
            match key {
                "HTTP_LISTEN" => config.http.listen = parse(&name, &value)?,
                "HTTP_NODE" => config.http.node = value,
                "MEDIA_PORT_FIRST" => config.media.port_first = parse(&name, &value)?,
                "MEDIA_PORT_LAST" => config.media.port_last = parse(&name, &value)?,
                "MEDIA_BIND_ADDRESS" => config.media.bind_address = parse(&name, &value)?,
                "MEDIA_PUBLIC_ADDRESS" => config.media.public_address = parse(&name, &value)?,
                "MEDIA_MIXER_THREADS" => config.media.mixer_threads = parse(&name, &value)?,
                "MEDIA_LATCHING" => config.media.latching = parse(&name, &value)?,
                "MEDIA_NAT_ANY_SOURCE" => config.media.nat_any_source = parse(&name, &value)?,
                "MEDIA_UNPROVEN_SEND_MS" => config.media.unproven_send_ms = parse(&name, &value)?,
                "MEDIA_BATCH_SENDS" => config.media.batch_sends = parse(&name, &value)?,
                "MEDIA_RAISE_PRIORITY" => config.media.raise_priority = parse(&name, &value)?,
                "MEDIA_OPUS_MODE" => config.media.opus.mode = value,
                "MEDIA_OPUS_BITRATE" => config.media.opus.bitrate = parse(&name, &value)?,
                "MEDIA_OPUS_COMPLEXITY" => config.media.opus.complexity = parse(&name, &value)?,
                "MEDIA_OPUS_BANDWIDTH" => config.media.opus.bandwidth = value,
                "MEDIA_OPUS_FEC" => config.media.opus.fec = parse(&name, &value)?,
                "MEDIA_OPUS_DTX" => config.media.opus.dtx = parse(&name, &value)?,
                "MEDIA_RTP_TIMEOUT_SECONDS" => {
                    config.media.rtp_timeout_seconds = parse(&name, &value)?
                }
                "SIP_ENABLED" => config.sip.enabled = parse(&name, &value)?,
                "SIP_LISTEN" => config.sip.listen = parse(&name, &value)?,
                "SIP_PUBLIC_ADDRESS" => config.sip.public_address = Some(parse(&name, &value)?),
                "SIP_REALM" => config.sip.realm = value,
                "WEBRTC_ENABLED" => config.webrtc.enabled = parse(&name, &value)?,
                "WEBRTC_LISTEN" => config.webrtc.listen = parse(&name, &value)?,
                "WEBRTC_PUBLIC_ADDRESS" => {
                    config.webrtc.public_address = Some(parse(&name, &value)?)
                }
                "CLUSTER_ENABLED" => config.cluster.enabled = parse(&name, &value)?,
                "CLUSTER_API_URL" => config.cluster.api_url = Some(value),
                "CLUSTER_HEARTBEAT_MS" => config.cluster.heartbeat_ms = parse(&name, &value)?,
                "CLUSTER_LEASE_MS" => config.cluster.lease_ms = parse(&name, &value)?,
                "STORAGE_PATH" => config.storage.path = PathBuf::from(value),
                "STORAGE_URL" => config.storage.url = Some(value).filter(|url| !url.is_empty()),
                "STORAGE_POOL_SIZE" => config.storage.pool_size = parse(&name, &value)?,
                "AUTH_TOKEN_LIFETIME_SECONDS" => {
                    config.auth.token_lifetime_seconds = parse(&name, &value)?
                }
                "AUTH_LOGIN_FAILURES" => config.auth.login_failures = parse(&name, &value)?,
                "AUTH_LOGIN_WINDOW_SECONDS" => {
                    config.auth.login_window_seconds = parse(&name, &value)?
                }
                "LOG_LEVEL" => config.log.level = value,
                "LOG_JSON" => config.log.json = parse(&name, &value)?,
                "FETCH_ALLOW_HOSTS" => {
                    config.fetch.allow_hosts = value
                        .split(',')
                        .map(str::trim)
                        .filter(|h| !h.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                "FETCH_CONNECT_TIMEOUT_SECONDS" => {
                    config.fetch.connect_timeout_seconds = parse(&name, &value)?
                }
                "FETCH_TIMEOUT_SECONDS" => config.fetch.timeout_seconds = parse(&name, &value)?,
                "FETCH_MAX_BYTES" => config.fetch.max_bytes = parse(&name, &value)?,
                "FETCH_MAX_REDIRECTS" => config.fetch.max_redirects = parse(&name, &value)?,
                "PROMPTS_DIR" => config.prompts.dir = PathBuf::from(value),
                "PROMPTS_CACHE_ENTRIES" => config.prompts.cache_entries = parse(&name, &value)?,
                "PROMPTS_CACHE_MEGABYTES" => config.prompts.cache_megabytes = parse(&name, &value)?,
                "METRICS_ROOM_SERIES" => config.metrics.room_series = parse(&name, &value)?,
                "CONFIG" => {}
                _ => warnings.push(format!("{name} is not a tutti setting; ignoring it")),
            }
        }
        if config.auth.login_failures == 0 || config.auth.login_window_seconds == 0 {
            bail!(
                "auth.login_failures ({}) and auth.login_window_seconds ({}) must be at least 1",
                config.auth.login_failures,
                config.auth.login_window_seconds
            );
        }
        if config.media.port_first > config.media.port_last {
            bail!(
                "media.port_first ({}) is above media.port_last ({})",
                config.media.port_first,
                config.media.port_last
            );
        }
        if let Some(url) = config.storage.redacted_url() {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                bail!("storage.url {url} must be a postgres:// URL");
            }
        }
        if config.storage.pool_size == 0 {
            bail!("storage.pool_size must be at least 1");
        }
        config.media.opus.encoder_settings()?;
        config.outbound()?;
        if config.storage.url.is_some() && !config.cluster.enabled {
            warnings.push(
                "storage.url is set without [cluster] enabled: run one node on this database \
                 (two would each send its webhooks and close each other's calls at start)"
                    .into(),
            );
        }
        Ok((config, warnings))
    }

    /// The outbound rule: `[fetch] allow_hosts` let through, and this server's own addresses
    /// (its HTTP and public media addresses, besides those of its interfaces) refused.
    pub fn outbound(&self) -> anyhow::Result<OutboundPolicy> {
        let hosts = self.fetch.allow_hosts.iter().map(String::as_str);
        let policy = OutboundPolicy::allowing(hosts)
            .map_err(|e| anyhow::anyhow!("fetch.allow_hosts {:?}: {e}", self.fetch.allow_hosts))?;
        let own = [self.http.listen.ip(), self.media.public_address];
        Ok(policy.with_own_addresses(own.into_iter().filter(|ip| !ip.is_unspecified())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses_to_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/tutti.example.toml");
        let (config, warnings) = Config::load(Some(&example), Vec::new()).unwrap();
        assert_eq!(config, Config::default());
        assert!(warnings.is_empty());
    }

    #[test]
    fn the_mix_encoder_is_configurable_and_checked() {
        let (config, _) = Config::load(
            None,
            vars(&[
                ("TUTTI_MEDIA_OPUS_MODE", "voip"),
                ("TUTTI_MEDIA_OPUS_BITRATE", "48000"),
                ("TUTTI_MEDIA_OPUS_COMPLEXITY", "9"),
                ("TUTTI_MEDIA_OPUS_FEC", "true"),
                ("TUTTI_MEDIA_OPUS_DTX", "true"),
                ("TUTTI_MEDIA_OPUS_BANDWIDTH", "superwideband"),
            ]),
        )
        .unwrap();
        let settings = config.media.opus.encoder_settings().unwrap();
        assert_eq!(
            (
                settings.application,
                settings.bitrate,
                settings.complexity,
                settings.inband_fec,
                settings.dtx,
                settings.max_bandwidth
            ),
            (
                OpusApplication::Voip,
                48_000,
                9,
                true,
                true,
                OpusBandwidth::Superwideband
            )
        );
        let file = std::env::temp_dir().join(format!("tutti-opus-{}.toml", std::process::id()));
        std::fs::write(&file, "[media.opus]\nmode = \"audio\"\ncomplexity = 2\n").unwrap();
        let (config, _) = Config::load(Some(&file), Vec::new()).unwrap();
        let _ = std::fs::remove_file(&file);
        assert_eq!(config.media.opus.complexity, 2);
        assert_eq!(config.media.opus.bitrate, OpusConfig::default().bitrate);
        for (name, value, says) in [
            ("TUTTI_MEDIA_OPUS_MODE", "celt", "media.opus.mode"),
            ("TUTTI_MEDIA_OPUS_BITRATE", "1000", "media.opus.bitrate"),
            ("TUTTI_MEDIA_OPUS_COMPLEXITY", "11", "media.opus.complexity"),
            ("TUTTI_MEDIA_OPUS_BANDWIDTH", "hifi", "media.opus.bandwidth"),
        ] {
            let error = Config::load(None, vars(&[(name, value)])).unwrap_err();
            assert!(error.to_string().contains(says), "{error}");
        }
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let env = vec![
            ("TUTTI_HTTP_LISTEN".to_owned(), "0.0.0.0:9000".to_owned()),
            ("TUTTI_STORAGE_PATH".to_owned(), "/tmp/x.db".to_owned()),
            ("PATH".to_owned(), "/usr/bin".to_owned()),
        ];
        let (config, _) = Config::load(None, env).unwrap();
        assert_eq!(config.http.listen.port(), 9000);
        assert_eq!(config.storage.path, PathBuf::from("/tmp/x.db"));
        let bad = Config::load(
            None,
            vec![("TUTTI_HTTP_LISTEN".to_owned(), "nope".to_owned())],
        )
        .unwrap_err();
        assert!(bad.to_string().contains("TUTTI_HTTP_LISTEN"));
        let (listed, _) = Config::load(
            None,
            vec![(
                "TUTTI_FETCH_ALLOW_HOSTS".to_owned(),
                "media.internal:8080, 10.0.0.5".to_owned(),
            )],
        )
        .unwrap();
        assert_eq!(
            listed.fetch.allow_hosts,
            ["media.internal:8080", "10.0.0.5"]
        );
        let policy = listed.outbound().unwrap();
        assert!(policy.check_url("http://10.0.0.5/a.wav").is_ok());
        assert!(policy.check_url("http://10.0.0.6/a.wav").is_err());
        let bad = Config::load(
            None,
            vec![("TUTTI_FETCH_ALLOW_HOSTS".to_owned(), "http://x/".to_owned())],
        )
        .unwrap_err();
        assert!(bad.to_string().contains("fetch.allow_hosts"), "{bad}");
    }

    #[test]
    fn the_store_is_in_postgresql_when_a_url_is_given() {
        let (config, _) = Config::load(
            None,
            vars(&[
                (
                    "TUTTI_STORAGE_URL",
                    "postgres://tutti:pw@db.internal:5433/tutti",
                ),
                ("TUTTI_STORAGE_POOL_SIZE", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(
            config.storage.url.as_deref(),
            Some("postgres://tutti:pw@db.internal:5433/tutti")
        );
        assert_eq!(config.storage.pool_size, 3);
        assert_eq!(
            config.storage.redacted_url().as_deref(),
            Some("postgres://tutti:***@db.internal:5433/tutti")
        );
        let (empty, _) = Config::load(None, vars(&[("TUTTI_STORAGE_URL", "")])).unwrap();
        assert_eq!(empty.storage.url, None, "an empty variable means SQLite");
        // A shared database without the cluster is one node's: said at start.
        let url = ("TUTTI_STORAGE_URL", "postgres://db/tutti");
        let (_, alone) = Config::load(None, vars(&[url])).unwrap();
        assert!(
            alone
                .iter()
                .any(|w| w.contains("run one node on this database")),
            "{alone:?}"
        );
        let (_, clustered) =
            Config::load(None, vars(&[url, ("TUTTI_CLUSTER_ENABLED", "true")])).unwrap();
        assert!(clustered.is_empty(), "{clustered:?}");

        let file = std::env::temp_dir().join(format!("tutti-storage-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            "[storage]\nurl = \"postgresql://db/tutti?user=tutti&password=hunter2&sslmode=require\"\n",
        )
        .unwrap();
        let (config, _) = Config::load(Some(&file), Vec::new()).unwrap();
        let _ = std::fs::remove_file(&file);
        let shown = config.storage.redacted_url().unwrap();
        assert!(
            !shown.contains("hunter2") && shown.contains("sslmode=require"),
            "{shown}"
        );
        assert_eq!(config.storage.pool_size, 8);

        for (name, value, says) in [
            (
                "TUTTI_STORAGE_URL",
                "mysql://root:hunter2@db/tutti",
                "storage.url",
            ),
            ("TUTTI_STORAGE_URL", "hunter2", "storage.url"),
            ("TUTTI_STORAGE_POOL_SIZE", "0", "storage.pool_size"),
        ] {
            let error = Config::load(None, vars(&[(name, value)])).unwrap_err();
            assert!(error.to_string().contains(says), "{error}");
            assert!(!format!("{error:#}").contains("hunter2"), "{error:#}");
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_rooms_with_series_of_their_own_are_configurable() {
        assert_eq!(Config::default().metrics.room_series, 20);
        let file = std::env::temp_dir().join(format!("tutti-metrics-{}.toml", std::process::id()));
        std::fs::write(&file, "[metrics]\nroom_series = 3\n").unwrap();
        let (config, _) = Config::load(Some(&file), Vec::new()).unwrap();
        assert_eq!(config.metrics.room_series, 3);
        let (config, warnings) =
            Config::load(Some(&file), vars(&[("TUTTI_METRICS_ROOM_SERIES", "5")])).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert_eq!((config.metrics.room_series, warnings.len()), (5, 0));
        let bad = Config::load(None, vars(&[("TUTTI_METRICS_ROOM_SERIES", "many")])).unwrap_err();
        assert!(
            bad.to_string().contains("TUTTI_METRICS_ROOM_SERIES"),
            "{bad}"
        );
    }

    #[test]
    fn unknown_variables_are_warnings_and_bad_values_are_fatal() {
        // What Kubernetes injects for a service named tutti.
        let (config, warnings) = Config::load(
            None,
            vars(&[
                ("TUTTI_SERVICE_HOST", "10.0.0.7"),
                ("TUTTI_PORT", "tcp://10.0.0.7:8000"),
                ("TUTTI_AUTH_LOGIN_FAILURES", "5"),
                ("TUTTI_AUTH_LOGIN_WINDOW_SECONDS", "30"),
            ]),
        )
        .unwrap();
        assert_eq!(
            warnings,
            [
                "TUTTI_SERVICE_HOST is not a tutti setting; ignoring it",
                "TUTTI_PORT is not a tutti setting; ignoring it",
            ]
        );
        assert_eq!(
            config.auth.login_limit(),
            tutti_api::LoginLimit {
                failures: 5,
                per: std::time::Duration::from_secs(30),
                ..tutti_api::LoginLimit::default()
            }
        );
        for (name, value, says) in [
            (
                "TUTTI_MEDIA_PORT_FIRST",
                "70000",
                "TUTTI_MEDIA_PORT_FIRST=\"70000\"",
            ),
            ("TUTTI_AUTH_LOGIN_FAILURES", "0", "auth.login_failures (0)"),
            (
                "TUTTI_AUTH_LOGIN_WINDOW_SECONDS",
                "soon",
                "TUTTI_AUTH_LOGIN_WINDOW_SECONDS",
            ),
        ] {
            let error = Config::load(None, vars(&[(name, value)])).unwrap_err();
            assert!(error.to_string().contains(says), "{error}");
        }
    }
}
