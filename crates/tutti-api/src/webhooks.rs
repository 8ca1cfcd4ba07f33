//! Webhook delivery: signed JSON POSTs to receivers, at least once, never blocking the caller.
//!
//! A face builds the JSON (VoIPbin's per-account `{"type":…,"data":…}`, FoneStorm's
//! per-conference `callback_url` payload) and hands it to [`WebhookSender::deliver`], which only
//! pushes it onto a bounded queue. Background tasks started by [`WebhookSender::start`] POST it,
//! retry it with backoff, and count the outcome in [`WebhookStats`].
//!
//! # The request
//!
//! Every attempt is `POST <url>` with the delivery's body, byte for byte, and these headers:
//!
//! | header | value |
//! | --- | --- |
//! | `Content-Type` | `application/json` |
//! | `User-Agent` | `tutti/<version>` ([`USER_AGENT`]) |
//! | `X-Tutti-Delivery` | a UUID naming the delivery; the same on every retry of it |
//! | `X-Tutti-Attempt` | `1` for the first attempt, `2` for the first retry, … |
//! | `X-Tutti-Timestamp` | only with a secret: the attempt's send time, Unix seconds, decimal |
//! | `X-Tutti-Signature` | only with a secret: `sha256=` and 64 lowercase hex digits |
//!
//! Redirects are not followed: a `3xx` is a failed attempt like any other non-`2xx`.
//!
//! # Where requests go
//!
//! URLs follow the server's outbound rule ([`WebhookConfig::outbound`], see
//! [`tutti_conference::outbound`]): `http`/`https` only, no user info, and only public
//! addresses — the client resolves names through the rule and connects only to addresses it
//! let through; an address written in the URL is checked when the delivery is accepted and
//! again before it is attempted. A delivery whose URL is refused is counted as failed and not
//! attempted. No proxy from the environment is used (it would resolve names itself).
//!
//! # The signature (what a receiver checks)
//!
//! With a secret, the signature is HMAC-SHA256 keyed with the secret's UTF-8 bytes over the
//! *signed string*: the `X-Tutti-Timestamp` header value exactly as sent (ASCII decimal digits),
//! one `.` (0x2E), then the raw request body bytes, exactly as received (do not re-serialize the
//! JSON). The header carries the MAC as `sha256=` followed by its 32 bytes in lowercase hex:
//!
//! ```text
//! X-Tutti-Signature: sha256=hex(HMAC_SHA256(key = secret, msg = timestamp || "." || body))
//! ```
//!
//! A receiver should (1) recompute the MAC and compare it in constant time ([`verify`] does
//! this), and (2) refuse a timestamp further than a few minutes from its own clock (five is
//! usual), which makes a captured request useless for a later replay. Each attempt is signed
//! afresh with its own timestamp, so a retry sent long after the first attempt still passes the
//! freshness check.
//!
//! For example, secret `secret`, timestamp `1700000000` and body `{"a":1}` sign the string
//! `1700000000.{"a":1}`:
//!
//! ```
//! use tutti_api::webhooks::{sign, verify};
//!
//! let header = sign("secret", 1_700_000_000, br#"{"a":1}"#);
//! assert_eq!(
//!     header,
//!     "sha256=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
//! );
//! assert!(verify("secret", 1_700_000_000, br#"{"a":1}"#, &header));
//! assert!(!verify("secret", 1_700_000_001, br#"{"a":1}"#, &header));
//! ```
//!
//! The same with OpenSSL:
//! `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret`.
//!
//! # Guarantees
//!
//! - **At least once, not exactly once.** A delivery is retried until a `2xx` answer, so a
//!   receiver that handled a request but whose answer was lost (timeout, reset) sees it again:
//!   deduplicate on `X-Tutti-Delivery`.
//! - **Durable with an outbox.** A sender started with
//!   [`WebhookSender::start_with_outbox`] writes each delivery to the store before `deliver`
//!   returns, records each failed attempt, and removes the delivery once it is delivered,
//!   rejected, given up or dropped. When it starts, it resumes every delivery the store still
//!   holds, in order, with its id and attempt count: a crash or restart loses none, and sends
//!   again at most those whose success was not yet recorded. Without an outbox
//!   ([`WebhookSender::start`]) deliveries live in memory only.
//! - **Retries.** A connection error, a per-attempt timeout ([`WebhookConfig::attempt_timeout`]),
//!   a `3xx`, `5xx`, `408` or `429` is retried after an exponential backoff with jitter (the
//!   delay before retry *n* is `initial_backoff · backoff_factor^(n−1)`, capped at
//!   `max_backoff`, then drawn uniformly from its upper half; a `Retry-After` in seconds on a
//!   `429` or `503` lengthens it, still capped), up to [`WebhookConfig::max_attempts`] attempts
//!   in all; then the delivery is given up and counted as *failed*. Any other `4xx` is final and
//!   counted as *rejected*.
//! - **Order.** Deliveries to the same URL (the same string) are attempted one at a time, in the
//!   order `deliver` accepted them: a delivery that is being retried holds back later ones to
//!   that URL until it succeeds or is given up. Deliveries that are dropped, rejected or given up
//!   leave gaps; there is no order between different URLs.
//! - **Isolation.** Each URL has its own lane, so a slow or dead receiver delays only deliveries
//!   to itself. Lanes share at most [`WebhookConfig::max_concurrent_requests`] requests in
//!   flight; a lane holds one of those only during an attempt (at most `attempt_timeout`), never
//!   while it waits to retry, so other URLs are held up only when that many receivers hang at
//!   once.
//! - **Bounded.** `deliver` never blocks or awaits: a full queue
//!   ([`WebhookConfig::queue_capacity`]), a URL with [`WebhookConfig::max_pending_per_url`]
//!   deliveries already waiting, or [`WebhookConfig::max_pending_total`] waiting in all drops the
//!   new delivery and counts it as *dropped*.
//!
//! Failures are logged with `tracing`: a failed attempt that will be retried at `debug`, a
//! delivery given up, rejected, refused or dropped at `warn`; a success is not logged above
//! `debug`.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use sha2::Sha256;
use tokio::sync::{mpsc, Semaphore};
use tutti_conference::outbound::OutboundPolicy;
use tutti_conference::outbox::OutboxRecord;
use tutti_conference::{ConferenceService, ServiceError};
use uuid::Uuid;

/// The `User-Agent` of every webhook request: `tutti/<crate version>`.
pub const USER_AGENT: &str = concat!("tutti/", env!("CARGO_PKG_VERSION"));

/// The header carrying the signature, `sha256=<lowercase hex>`.
pub const SIGNATURE_HEADER: &str = "X-Tutti-Signature";

/// The header carrying the signed timestamp, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-Tutti-Timestamp";

/// The header naming a delivery (a UUID), the same on each of its attempts.
pub const DELIVERY_HEADER: &str = "X-Tutti-Delivery";

/// The header numbering the attempt, from 1.
pub const ATTEMPT_HEADER: &str = "X-Tutti-Attempt";

/// How much of a response body is read (to let the connection be reused) before it is dropped.
const MAX_DRAIN_BYTES: usize = 16 * 1024;

type HmacSha256 = Hmac<Sha256>;

/// How a [`WebhookSender`] delivers: queue sizes, concurrency, timeouts and retries.
///
/// `WebhookConfig::default()` gives the values documented on each field.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Deliveries accepted by `deliver` and not yet sorted into their URL's lane; a delivery
    /// that finds the queue full is dropped. Default 1024 (0 counts as 1).
    pub queue_capacity: usize,
    /// Deliveries waiting or in progress for one URL; more are dropped. Default 256 (0 counts
    /// as 1).
    pub max_pending_per_url: usize,
    /// Deliveries waiting or in progress for all URLs together; more are dropped. Default 8192.
    pub max_pending_total: usize,
    /// HTTP requests in flight at once, over all URLs. Default 16 (0 counts as 1).
    pub max_concurrent_requests: usize,
    /// The time one attempt may take, from connecting to the response's status. Default 5 s.
    pub attempt_timeout: Duration,
    /// The delay before the first retry (before jitter). Default 500 ms.
    pub initial_backoff: Duration,
    /// What each further retry multiplies the delay by. Default 2 (values below 1 count as 1).
    pub backoff_factor: f64,
    /// The longest delay between two attempts. Default 30 s.
    pub max_backoff: Duration,
    /// Attempts per delivery, the first included. Default 8 (0 counts as 1).
    pub max_attempts: u32,
    /// Which URLs may receive deliveries. Default: public addresses only.
    pub outbound: OutboundPolicy,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 1024,
            max_pending_per_url: 256,
            max_pending_total: 8192,
            max_concurrent_requests: 16,
            attempt_timeout: Duration::from_secs(5),
            initial_backoff: Duration::from_millis(500),
            backoff_factor: 2.0,
            max_backoff: Duration::from_secs(30),
            max_attempts: 8,
            outbound: OutboundPolicy::default(),
        }
    }
}

impl WebhookConfig {
    /// The delay before retry number `retry` (1 for the first retry), before jitter and
    /// `Retry-After`: `initial_backoff · backoff_factor^(retry−1)`, capped at `max_backoff`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = if self.backoff_factor.is_finite() {
            self.backoff_factor.max(1.0)
        } else {
            1.0
        };
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let seconds = self.initial_backoff.as_secs_f64() * factor.powi(exponent);
        let cap = self.max_backoff.as_secs_f64();
        if seconds.is_finite() && seconds < cap {
            Duration::from_secs_f64(seconds)
        } else {
            self.max_backoff
        }
    }
}

/// One webhook to send: a JSON body POSTed to `url`, signed when `secret` is given.
#[derive(Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The receiver; only `http://` and `https://` URLs are delivered.
    pub url: String,
    /// The JSON body, sent byte for byte (and signed over these exact bytes).
    pub body: Vec<u8>,
    /// The shared secret for the `X-Tutti-Signature` header; `None` sends no signature.
    pub secret: Option<String>,
}

impl Delivery {
    /// A delivery of `body` to `url`, signed with `secret` when there is one.
    pub fn new(url: impl Into<String>, body: impl Into<Vec<u8>>, secret: Option<String>) -> Self {
        Self {
            url: url.into(),
            body: body.into(),
            secret,
        }
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("url", &self.url)
            .field("body_len", &self.body.len())
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Tutti-Signature` value for `body` sent at `timestamp` (Unix seconds) with `secret`:
/// `sha256=` and the lowercase hex HMAC-SHA256 of `"<timestamp>.<body>"`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    let mut header = String::with_capacity(7 + 2 * tag.len());
    header.push_str("sha256=");
    for byte in tag {
        header.push(char::from(HEX[usize::from(byte >> 4)]));
        header.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    header
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether `header` (an `X-Tutti-Signature` value) signs `body` at `timestamp` with `secret`.
///
/// The comparison takes constant time. Hex digits may be in either case; surrounding
/// whitespace is ignored. This checks the signature only: a receiver also refuses a timestamp
/// too far from its own clock (see the module documentation).
pub fn verify(secret: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(tag) = decode_hex(hex) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&tag).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    fn nibble(digit: u8) -> Option<u8> {
        match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            b'A'..=b'F' => Some(digit - b'A' + 10),
            _ => None,
        }
    }
    let digits = hex.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// Delivery counters since [`WebhookSender::start`], read without locking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WebhookStats {
    /// Deliveries accepted onto the queue by `deliver`.
    pub queued: u64,
    /// Deliveries a receiver answered with a `2xx`.
    pub delivered: u64,
    /// Retry attempts made (a delivery that succeeds on its third attempt adds 2).
    pub retried: u64,
    /// Deliveries given up after their last attempt, plus those refused for their URL.
    pub failed: u64,
    /// Deliveries dropped because a queue or a backlog was full.
    pub dropped: u64,
    /// Deliveries a receiver refused with a `4xx` other than `408` and `429` (not retried).
    pub rejected: u64,
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    delivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
}

impl Counters {
    fn dropped(&self, url: &str, why: &str) {
        let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        // Drops come in floods when a queue is full: warn on the 1st, 2nd, 4th, 8th, … only.
        if n.is_power_of_two() {
            tracing::warn!(url, why, dropped_total = n, "webhook dropped");
        } else {
            tracing::debug!(url, why, dropped_total = n, "webhook dropped");
        }
    }
}

/// A delivery accepted by `deliver`, on its way to its lane.
struct Job {
    id: Uuid,
    key: String,
    url: Url,
    body: Bytes,
    secret: Option<String>,
    /// Attempts made before this process took the delivery over (from the outbox).
    attempts: u32,
}

/// What the lanes and the dispatcher share.
struct Shared {
    config: WebhookConfig,
    client: reqwest::Client,
    requests: Semaphore,
    counters: Arc<Counters>,
    pending_total: AtomicUsize,
    outbox: Option<Arc<ConferenceService>>,
}

/// Sends webhooks in the background. Cheap to clone; all clones feed the same queue.
///
/// When the last clone is dropped, deliveries already accepted are still attempted (retries
/// included) for as long as the runtime runs.
#[derive(Clone, Debug)]
pub struct WebhookSender {
    queue: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    outbound: OutboundPolicy,
    outbox: Option<Arc<ConferenceService>>,
}

/// Resolves names for the webhook client through the outbound rule, so that it connects only
/// to addresses the rule let through.
struct PolicyResolver(OutboundPolicy);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses =
                tokio::task::spawn_blocking(move || policy.resolve(&host, None)).await??;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

impl WebhookSender {
    /// Starts the background tasks on the current tokio runtime and returns their handle.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or if the HTTP client cannot be built (its TLS backend failed
    /// to initialize), which happens at start-up or never.
    pub fn start(config: WebhookConfig) -> WebhookSender {
        Self::start_inner(config, None, Vec::new())
    }

    /// Like [`start`](Self::start), keeping every delivery in `service`'s store until it is
    /// finished, and first resuming those a previous process left there (read once, here).
    pub fn start_with_outbox(config: WebhookConfig, service: Arc<ConferenceService>) -> Self {
        let kept = service.outbox_pending().unwrap_or_else(|error| {
            tracing::error!(%error, "the webhook outbox cannot be read; nothing is resumed");
            Vec::new()
        });
        let resumed: Vec<Job> = kept
            .into_iter()
            .filter_map(|record| kept_job(&config.outbound, &service, record))
            .collect();
        if !resumed.is_empty() {
            tracing::info!(deliveries = resumed.len(), "resuming kept webhooks");
        }
        Self::start_inner(config, Some(service), resumed)
    }

    fn start_inner(
        config: WebhookConfig,
        outbox: Option<Arc<ConferenceService>>,
        resumed: Vec<Job>,
    ) -> WebhookSender {
        let mut config = config;
        config.queue_capacity = config.queue_capacity.max(1);
        config.max_pending_per_url = config.max_pending_per_url.max(1);
        config.max_concurrent_requests = config.max_concurrent_requests.max(1);
        config.max_attempts = config.max_attempts.max(1);

        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(config.attempt_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver(config.outbound.clone())))
            .build()
            .expect("the webhook HTTP client builds");
        let counters = Arc::new(Counters::default());
        let (queue, incoming) = mpsc::channel(config.queue_capacity);
        let outbound = config.outbound.clone();
        let shared = Arc::new(Shared {
            requests: Semaphore::new(config.max_concurrent_requests),
            config,
            client,
            counters: counters.clone(),
            pending_total: AtomicUsize::new(0),
            outbox: outbox.clone(),
        });
        tokio::spawn(dispatch(shared, incoming, resumed));
        WebhookSender {
            queue,
            counters,
            outbound,
            outbox,
        }
    }

    /// Takes over deliveries another node of the cluster kept in the shared outbox (a node
    /// that is gone): they go out with their ids and the attempts made so far, after what is
    /// queued now. Never waits; a delivery the full queue cannot take stays in the outbox,
    /// for this node's next start.
    pub fn resume(&self, records: Vec<OutboxRecord>) {
        let Some(service) = &self.outbox else {
            return;
        };
        for job in records
            .into_iter()
            .filter_map(|record| kept_job(&self.outbound, service, record))
        {
            if self.queue.try_send(job).is_err() {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("a webhook taken over from another node waits for the next start: the queue is full");
            }
        }
    }

    /// Queues `delivery` and returns at once; it never awaits. Without an outbox it never
    /// blocks either; with one it first writes the delivery to the store (call it where a short
    /// blocking write is fine, such as the notifier's thread, not on an async worker).
    ///
    /// A URL the outbound rule refuses is counted as failed; a full queue drops the delivery
    /// and counts it as dropped. Either is logged at `warn`.
    pub fn deliver(&self, delivery: Delivery) {
        let Delivery { url, body, secret } = delivery;
        let parsed = match self.outbound.check_url(&url) {
            Ok(parsed) => parsed,
            Err(error) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(url, %error, "webhook refused");
                return;
            }
        };
        let id = Uuid::new_v4();
        if let Some(service) = &self.outbox {
            let record = OutboxRecord {
                id,
                url: url.clone(),
                body: body.clone(),
                secret: secret.clone(),
                attempts: 0,
                created: unix_now(),
            };
            if let Err(error) = service.outbox_add(&record) {
                tracing::warn!(url, %error, "webhook not kept in the outbox; in memory only");
            }
        }
        let job = Job {
            id,
            key: url,
            url: parsed,
            body: Bytes::from(body),
            secret,
            attempts: 0,
        };
        match self.queue.try_send(job) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(job)) => {
                self.counters.dropped(&job.key, "queue full");
                if let Some(service) = &self.outbox {
                    forget(service, job.id);
                }
            }
            Err(mpsc::error::TrySendError::Closed(job)) => {
                // Only if the dispatcher died (its runtime shut down); an outbox keeps the
                // delivery for the next start.
                self.counters.dropped(&job.key, "sender stopped");
            }
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> WebhookStats {
        let c = &*self.counters;
        WebhookStats {
            queued: c.queued.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
        }
    }
}

/// A URL's lane as the dispatcher sees it.
struct Lane {
    id: u64,
    jobs: mpsc::UnboundedSender<Job>,
    /// Deliveries sent to the lane and not finished; raised by the dispatcher, lowered by the lane.
    pending: Arc<AtomicUsize>,
}

/// A lane telling the dispatcher it has finished everything it was given so far.
struct Idle {
    key: String,
    id: u64,
}

/// A kept delivery as a job, or `None` (and forgotten) when its URL is refused now.
fn kept_job(
    outbound: &OutboundPolicy,
    service: &ConferenceService,
    record: OutboxRecord,
) -> Option<Job> {
    match outbound.check_url(&record.url) {
        Ok(url) => Some(Job {
            id: record.id,
            key: record.url,
            url,
            body: Bytes::from(record.body),
            secret: record.secret,
            attempts: record.attempts,
        }),
        Err(error) => {
            tracing::warn!(url = record.url, %error, "a kept webhook's URL is refused");
            forget(service, record.id);
            None
        }
    }
}

/// Removes a finished delivery from the outbox (a blocking write), logging a failure.
fn forget(service: &ConferenceService, id: Uuid) {
    if let Err(error) = service.outbox_remove(id) {
        tracing::warn!(%error, delivery = %id, "the webhook outbox could not be updated");
    }
}

/// Sorts queued deliveries into one lane (task) per URL, those resumed from the outbox first;
/// ends when every sender is gone.
///
/// Only this task creates lanes, sends to them and removes them, so a lane is removed only when
/// it has nothing pending and nothing can be in flight to it.
async fn dispatch(shared: Arc<Shared>, mut incoming: mpsc::Receiver<Job>, resumed: Vec<Job>) {
    let mut lanes: HashMap<String, Lane> = HashMap::new();
    let (idle_tx, mut idle_rx) = mpsc::unbounded_channel::<Idle>();
    let mut next_id = 0_u64;
    for job in resumed {
        route(&shared, &mut lanes, &idle_tx, &mut next_id, job).await;
    }
    loop {
        tokio::select! {
            biased;
            Some(idle) = idle_rx.recv() => {
                let finished = lanes.get(&idle.key).is_some_and(|lane| {
                    lane.id == idle.id && lane.pending.load(Ordering::Acquire) == 0
                });
                if finished {
                    lanes.remove(&idle.key);
                }
            }
            job = incoming.recv() => {
                let Some(job) = job else { break };
                route(&shared, &mut lanes, &idle_tx, &mut next_id, job).await;
            }
        }
    }
    // Dropping the lanes closes their queues; each finishes what it holds, then ends.
}

/// Hands `job` to its URL's lane (started if needed), or drops it when a backlog is full.
async fn route(
    shared: &Arc<Shared>,
    lanes: &mut HashMap<String, Lane>,
    idle_tx: &mpsc::UnboundedSender<Idle>,
    next_id: &mut u64,
    job: Job,
) {
    let config = &shared.config;
    if shared.pending_total.load(Ordering::Relaxed) >= config.max_pending_total {
        shared
            .counters
            .dropped(&job.key, "too many webhooks pending");
        shared.keep(job.id, None).await;
        return;
    }
    let lane = lanes.entry(job.key.clone()).or_insert_with(|| {
        *next_id += 1;
        spawn_lane(shared, job.key.clone(), *next_id, idle_tx.clone())
    });
    if lane.pending.load(Ordering::Acquire) >= config.max_pending_per_url {
        shared
            .counters
            .dropped(&job.key, "too many webhooks pending for this URL");
        shared.keep(job.id, None).await;
        return;
    }
    lane.pending.fetch_add(1, Ordering::AcqRel);
    shared.pending_total.fetch_add(1, Ordering::Relaxed);
    if let Err(mpsc::error::SendError(job)) = lane.jobs.send(job) {
        // The lane's task is gone (it panicked); this job never reached it. An outbox keeps
        // it for the next start.
        shared.pending_total.fetch_sub(1, Ordering::Relaxed);
        let key = job.key.clone();
        lanes.remove(&key);
        shared.counters.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(url = key, "webhook lane stopped; delivery not attempted");
    }
}

fn spawn_lane(
    shared: &Arc<Shared>,
    key: String,
    id: u64,
    idle: mpsc::UnboundedSender<Idle>,
) -> Lane {
    let (jobs, mut rx) = mpsc::unbounded_channel::<Job>();
    let pending = Arc::new(AtomicUsize::new(0));
    let lane = Lane {
        id,
        jobs,
        pending: pending.clone(),
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            shared.run(job).await;
            shared.pending_total.fetch_sub(1, Ordering::Relaxed);
            if pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                let _ = idle.send(Idle {
                    key: key.clone(),
                    id,
                });
            }
        }
    });
    lane
}

/// The outcome of one attempt.
enum Attempt {
    Delivered,
    Rejected(StatusCode),
    /// Worth another attempt; the receiver may have asked for a delay.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl Shared {
    /// Updates the outbox, if there is one: records `attempts` made, or with `None` forgets
    /// the delivery. A failure is logged; delivery goes on from memory.
    async fn keep(&self, id: Uuid, attempts: Option<u32>) {
        let Some(service) = self.outbox.clone() else {
            return;
        };
        let written = tokio::task::spawn_blocking(move || match attempts {
            Some(attempts) => service.outbox_attempted(id, attempts),
            None => {
                forget(&service, id);
                Ok::<(), ServiceError>(())
            }
        })
        .await;
        if let Ok(Err(error)) = written {
            tracing::warn!(%error, delivery = %id, "the webhook outbox could not be updated");
        }
    }

    /// Attempts `job` until it is delivered, rejected or out of attempts, then forgets it.
    async fn run(&self, job: Job) {
        self.attempts(&job).await;
        self.keep(job.id, None).await;
    }

    async fn attempts(&self, job: &Job) {
        let config = &self.config;
        if let Err(error) = config.outbound.check_url(&job.key) {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(url = job.key, %error, "webhook refused");
            return;
        }
        let mut attempt = job.attempts + 1;
        loop {
            match self.attempt(job, attempt).await {
                Attempt::Delivered => {
                    self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(url = job.key, delivery = %job.id, attempt, "webhook delivered");
                    return;
                }
                Attempt::Rejected(status) => {
                    self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        url = job.key,
                        delivery = %job.id,
                        attempt,
                        status = status.as_u16(),
                        "webhook rejected by the receiver; not retried"
                    );
                    return;
                }
                Attempt::Retry {
                    reason,
                    retry_after,
                } => {
                    if attempt >= config.max_attempts {
                        self.counters.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            url = job.key,
                            delivery = %job.id,
                            attempts = attempt,
                            reason,
                            "webhook given up"
                        );
                        return;
                    }
                    let delay = retry_delay(config, attempt, retry_after);
                    tracing::debug!(
                        url = job.key,
                        delivery = %job.id,
                        attempt,
                        reason,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "webhook attempt failed; will retry"
                    );
                    self.keep(job.id, Some(attempt)).await;
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                    self.counters.retried.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// One POST, holding a request slot only while it is in flight.
    async fn attempt(&self, job: &Job, attempt: u32) -> Attempt {
        let Ok(_slot) = self.requests.acquire().await else {
            // The semaphore is never closed.
            return Attempt::Retry {
                reason: "no request slot".into(),
                retry_after: None,
            };
        };
        let mut request = self
            .client
            .post(job.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(DELIVERY_HEADER, job.id.to_string())
            .header(ATTEMPT_HEADER, attempt.to_string());
        if let Some(secret) = &job.secret {
            let timestamp = unix_now();
            request = request
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, sign(secret, timestamp, &job.body));
        }
        let mut response = match request.body(job.body.clone()).send().await {
            Ok(response) => response,
            Err(error) => {
                let reason = if error.is_timeout() {
                    "timed out".to_owned()
                } else {
                    // The chain says what failed (refused, reset, DNS, TLS…).
                    let mut reason = error.to_string();
                    let mut source = std::error::Error::source(&error);
                    while let Some(cause) = source {
                        reason.push_str(": ");
                        reason.push_str(&cause.to_string());
                        source = cause.source();
                    }
                    reason
                };
                return Attempt::Retry {
                    reason,
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        let retry_after = if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
        } else {
            None
        };
        // Read a little of the body so the connection can serve the next request.
        let mut drained = 0;
        while drained < MAX_DRAIN_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => drained += chunk.len(),
                _ => break,
            }
        }
        if status.is_success() {
            Attempt::Delivered
        } else if status.is_client_error()
            && status != StatusCode::REQUEST_TIMEOUT
            && status != StatusCode::TOO_MANY_REQUESTS
        {
            Attempt::Rejected(status)
        } else {
            Attempt::Retry {
                reason: format!("HTTP {}", status.as_u16()),
                retry_after,
            }
        }
    }
}

/// The delay after failed attempt number `attempt`: the backoff drawn uniformly from its upper
/// half, lengthened to the receiver's `Retry-After` if that is longer, capped at `max_backoff`.
fn retry_delay(config: &WebhookConfig, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let backoff = config.backoff(attempt);
    let jittered = backoff.mul_f64(0.5 + fastrand::f64() * 0.5);
    jittered
        .max(retry_after.unwrap_or_default())
        .min(config.max_backoff)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let config = WebhookConfig::default();
        assert_eq!(config.backoff(1), Duration::from_millis(500));
        assert_eq!(config.backoff(2), Duration::from_secs(1));
        assert_eq!(config.backoff(4), Duration::from_secs(4));
        assert_eq!(config.backoff(7), Duration::from_secs(30));
        assert_eq!(config.backoff(u32::MAX), Duration::from_secs(30));
        for attempt in 1..10 {
            let delay = retry_delay(&config, attempt, None);
            assert!(delay >= config.backoff(attempt) / 2 && delay <= config.backoff(attempt));
        }
        let asked = retry_delay(&config, 1, Some(Duration::from_secs(10)));
        assert_eq!(asked, Duration::from_secs(10));
        let capped = retry_delay(&config, 1, Some(Duration::from_secs(3600)));
        assert_eq!(capped, Duration::from_secs(30));
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(decode_hex("00ff7A"), Some(vec![0, 255, 122]));
        assert_eq!(decode_hex("0"), None);
        assert_eq!(decode_hex("zz"), None);
    }
}
