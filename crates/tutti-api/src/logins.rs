//! Failed logins, counted per client address: a leaky bucket per address fills by one for
//! each login attempt that fails and drains at [`LoginLimit::failures`] per
//! [`LoginLimit::per`]. A full bucket refuses every login from that address (with the right
//! key too, so a refusal says nothing about the key) with 429 and `Retry-After` until one
//! failure has drained. A successful login takes back its own attempt but does not forgive
//! earlier failures: otherwise anyone holding one valid key could keep guessing others.
//!
//! IPv6 clients are counted per /64, the block one host usually holds. At most
//! [`LoginLimit::max_addresses`] addresses are remembered: when full, drained addresses are
//! forgotten first, then the address with the fewest failures.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::connect_info::{ConnectInfo, MockConnectInfo};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header::RETRY_AFTER, HeaderValue};
use axum::response::Response;

/// How many failed logins an address may make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginLimit {
    /// Failures an address may make in a row, and how many drain away per [`Self::per`].
    pub failures: u32,
    /// The period over which [`Self::failures`] drain away.
    pub per: Duration,
    /// The most addresses remembered at once.
    pub max_addresses: usize,
}

impl Default for LoginLimit {
    /// Ten failures a minute, 10 000 addresses.
    fn default() -> Self {
        Self {
            failures: 10,
            per: Duration::from_secs(60),
            max_addresses: 10_000,
        }
    }
}

/// The address a request came from: the connection's peer (from
/// `into_make_service_with_connect_info`, or `MockConnectInfo` in tests), `None` when the
/// server was not told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientAddr(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let connected = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| *address)
            .or_else(|| {
                parts
                    .extensions
                    .get::<MockConnectInfo<SocketAddr>>()
                    .map(|MockConnectInfo(address)| *address)
            });
        Ok(Self(connected.map(|address| address.ip())))
    }
}

/// What one address has failed: the bucket's level at `at`.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    level: f64,
    at: Instant,
}

/// The failed-login counters of every address.
#[derive(Debug)]
pub(crate) struct LoginLimiter {
    limit: LoginLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// An attempt let through, counted as failed until [`LoginLimiter::succeeded`] says otherwise.
#[derive(Debug)]
#[must_use]
pub(crate) struct Attempt(Option<IpAddr>);

impl LoginLimiter {
    pub(crate) fn new(limit: LoginLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::default(),
        }
    }

    /// Failures drained per second.
    fn rate(&self) -> f64 {
        f64::from(self.limit.failures) / self.limit.per.as_secs_f64().max(0.001)
    }

    /// Lets a login attempt from `client` through (counting it as failed until it succeeds),
    /// or answers how many seconds to wait.
    pub(crate) fn attempt(&self, client: ClientAddr, now: Instant) -> Result<Attempt, u64> {
        let key = client.0.map_or(IpAddr::from(Ipv6Addr::UNSPECIFIED), block);
        let rate = self.rate();
        let capacity = f64::from(self.limit.failures);
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(Attempt(None));
        };
        if !buckets.contains_key(&key) && buckets.len() >= self.limit.max_addresses {
            make_room(&mut buckets, rate, now);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            level: 0.0,
            at: now,
        });
        let level = drained(bucket, rate, now);
        if level + 1.0 > capacity {
            // Whole seconds, not rounded up by the float's last bit.
            let wait = (level + 1.0 - capacity) / rate - 1e-9;
            return Err(wait.ceil().max(1.0) as u64);
        }
        *bucket = Bucket {
            level: level + 1.0,
            at: now,
        };
        Ok(Attempt(Some(key)))
    }

    /// The attempt succeeded: it no longer counts.
    pub(crate) fn succeeded(&self, attempt: Attempt, now: Instant) {
        let rate = self.rate();
        if let (Some(key), Ok(mut buckets)) = (attempt.0, self.buckets.lock()) {
            if let Some(bucket) = buckets.get_mut(&key) {
                let level = drained(bucket, rate, now);
                *bucket = Bucket {
                    level: (level - 1.0).max(0.0),
                    at: now,
                };
            }
        }
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.buckets.lock().map_or(0, |b| b.len())
    }
}

/// A bucket's level at `now`.
fn drained(bucket: &Bucket, rate: f64, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.level - elapsed * rate).max(0.0)
}

/// Forgets drained addresses, and when none has drained, the one with the fewest failures.
fn make_room(buckets: &mut HashMap<IpAddr, Bucket>, rate: f64, now: Instant) {
    let before = buckets.len();
    buckets.retain(|_, bucket| drained(bucket, rate, now) > 0.0);
    if buckets.len() < before {
        return;
    }
    let least = buckets
        .iter()
        .min_by(|a, b| drained(a.1, rate, now).total_cmp(&drained(b.1, rate, now)))
        .map(|(key, _)| *key);
    if let Some(key) = least {
        buckets.remove(&key);
    }
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64.
fn block(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// What a refused login is told.
pub(crate) fn refusal(seconds: u64) -> String {
    format!("too many failed logins from this address; try again in {seconds} seconds")
}

/// `response` with `Retry-After: <seconds>` when `seconds` is given.
pub(crate) fn with_retry_after(mut response: Response, seconds: Option<u64>) -> Response {
    if let Some(seconds) = seconds {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(text: &str) -> ClientAddr {
        ClientAddr(Some(text.parse().unwrap()))
    }

    #[test]
    fn failures_fill_an_addresss_bucket_and_drain_with_time() {
        let limiter = LoginLimiter::new(LoginLimit::default());
        let start = Instant::now();
        let ann = client("192.0.2.1");
        for _ in 0..10 {
            let _failed = limiter.attempt(ann, start).unwrap();
        }
        assert_eq!(
            limiter.attempt(ann, start).unwrap_err(),
            6,
            "one drains every 6 s"
        );
        assert_eq!(
            limiter
                .attempt(ann, start + Duration::from_secs(4))
                .unwrap_err(),
            2
        );
        let _failed = limiter
            .attempt(ann, start + Duration::from_secs(6))
            .unwrap();
        assert!(limiter
            .attempt(ann, start + Duration::from_secs(6))
            .is_err());
        // Another address is counted apart; another host of the same IPv6 /64 is not.
        let _ok = limiter.attempt(client("192.0.2.2"), start).unwrap();
        for _ in 0..10 {
            let _failed = limiter.attempt(client("2001:db8::1"), start).unwrap();
        }
        assert!(limiter.attempt(client("2001:db8::ffff"), start).is_err());
        assert!(limiter.attempt(client("2001:db8:0:1::1"), start).is_ok());
        // After a full minute everything has drained.
        let later = start + Duration::from_secs(60);
        assert!(limiter.attempt(ann, later).is_ok());
    }

    #[test]
    fn a_success_takes_back_its_own_attempt_only() {
        let limiter = LoginLimiter::new(LoginLimit::default());
        let now = Instant::now();
        let bob = client("192.0.2.3");
        for _ in 0..9 {
            let _failed = limiter.attempt(bob, now).unwrap();
        }
        for _ in 0..5 {
            let attempt = limiter.attempt(bob, now).unwrap();
            limiter.succeeded(attempt, now);
        }
        let _failed = limiter.attempt(bob, now).unwrap();
        assert!(limiter.attempt(bob, now).is_err(), "nine failures plus one");
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = LoginLimiter::new(LoginLimit {
            max_addresses: 100,
            ..LoginLimit::default()
        });
        let now = Instant::now();
        for i in 0..1000u32 {
            let _failed = limiter
                .attempt(ClientAddr(Some(IpAddr::from(i.to_be_bytes()))), now)
                .unwrap();
        }
        assert_eq!(limiter.remembered(), 100);
        // A busy address outlives the one-off ones.
        let busy = client("198.51.100.7");
        for _ in 0..10 {
            let _failed = limiter.attempt(busy, now).unwrap();
        }
        for i in 0..1000u32 {
            let _failed = limiter
                .attempt(
                    ClientAddr(Some(IpAddr::from((i + 5000).to_be_bytes()))),
                    now,
                )
                .unwrap();
        }
        assert!(limiter.attempt(busy, now).is_err());
    }
}
