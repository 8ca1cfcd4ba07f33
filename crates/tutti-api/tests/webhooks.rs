//! Webhook delivery against real HTTP receivers on 127.0.0.1.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use tokio::sync::mpsc;
use tutti_api::webhooks::{
    sign, verify, Delivery, WebhookConfig, WebhookSender, WebhookStats, ATTEMPT_HEADER,
    DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, USER_AGENT,
};
use tutti_conference::outbound::OutboundPolicy;

/// How long any expected event may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

/// One request a receiver got.
#[derive(Debug)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }
}

#[derive(Clone)]
struct Receiver {
    /// Statuses to answer, in order; 200 once they run out.
    script: Arc<Mutex<VecDeque<StatusCode>>>,
    seen: mpsc::UnboundedSender<Received>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let status = receiver
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(StatusCode::OK);
    let _ = receiver.seen.send(Received { headers, body });
    status
}

/// An HTTP receiver answering `script` then 200; returns its hook URL and what it receives.
async fn receiver(
    script: impl IntoIterator<Item = StatusCode>,
) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (seen, received) = mpsc::unbounded_channel();
    let state = Receiver {
        script: Arc::new(Mutex::new(script.into_iter().collect())),
        seen,
    };
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/hook"), received)
}

/// An address where nothing listens: connections are refused.
async fn dead_address() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    address
}

/// An address that accepts connections and never answers (the sockets stay open until the test
/// ends), and a channel that hears of each connection.
async fn hanging_address() -> (SocketAddr, mpsc::UnboundedReceiver<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (accepted, connections) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            let _ = accepted.send(());
        }
    });
    (address, connections)
}

async fn next(received: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(DEADLINE, received.recv())
        .await
        .expect("no request before the deadline")
        .expect("the receiver stopped")
}

/// Waits until the sender's counters satisfy `done`.
async fn stats_until(sender: &WebhookSender, done: impl Fn(&WebhookStats) -> bool) -> WebhookStats {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let stats = sender.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "stats never got there: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The default settings, with the receivers of these tests (on 127.0.0.1) let through.
fn local() -> WebhookConfig {
    WebhookConfig {
        outbound: OutboundPolicy::allowing(["127.0.0.1"]).unwrap(),
        ..WebhookConfig::default()
    }
}

/// Short delays so retries happen within the test.
fn quick() -> WebhookConfig {
    WebhookConfig {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        attempt_timeout: Duration::from_secs(2),
        ..local()
    }
}

#[tokio::test]
async fn delivers_the_exact_body_signed() {
    let (url, mut received) = receiver([]).await;
    let sender = WebhookSender::start(quick());
    // Not re-serialized on the way: escapes, raw UTF-8 and spacing arrive as they were.
    let body =
        r#"{"type":"conference_updated", "data":{"id":"c1","name":"caf\u00e9 ☕"}}"#.as_bytes();
    sender.deliver(Delivery::new(url, body.to_vec(), Some("s3cr3t".to_owned())));

    let got = next(&mut received).await;
    assert_eq!(&got.body[..], body);
    assert_eq!(got.header("content-type"), "application/json");
    assert_eq!(got.header("user-agent"), USER_AGENT);
    assert!(USER_AGENT.starts_with("tutti/"));
    assert_eq!(got.header(ATTEMPT_HEADER), "1");
    assert!(uuid::Uuid::parse_str(got.header(DELIVERY_HEADER)).is_ok());

    let timestamp: i64 = got.header(TIMESTAMP_HEADER).parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - timestamp).abs() <= 60,
        "timestamp {timestamp}, now {now}"
    );
    let signature = got.header(SIGNATURE_HEADER);
    assert!(signature.starts_with("sha256="));
    let hex = &signature["sha256=".len()..];
    assert_eq!(hex.len(), 64);
    assert!(hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_eq!(signature, sign("s3cr3t", timestamp, &got.body));

    assert!(verify("s3cr3t", timestamp, &got.body, signature));
    let mut tampered = got.body.to_vec();
    tampered[10] ^= 1;
    assert!(!verify("s3cr3t", timestamp, &tampered, signature));
    assert!(!verify("wrong", timestamp, &got.body, signature));
    assert!(!verify("s3cr3t", timestamp + 1, &got.body, signature));
    assert!(!verify("s3cr3t", timestamp, &got.body, &signature[7..]));
    assert!(!verify("s3cr3t", timestamp, &got.body, "sha256=zz"));
    assert!(verify(
        "s3cr3t",
        timestamp,
        &got.body,
        &signature.to_uppercase().replace("SHA256=", "sha256=")
    ));

    let stats = stats_until(&sender, |s| s.delivered == 1).await;
    assert_eq!(
        stats,
        WebhookStats {
            queued: 1,
            delivered: 1,
            ..WebhookStats::default()
        }
    );
}

#[test]
fn signature_scheme_is_pinned() {
    // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
    assert_eq!(
        sign("secret", 1_700_000_000, br#"{"a":1}"#),
        "sha256=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
    );
}

#[tokio::test]
async fn no_secret_no_signature() {
    let (url, mut received) = receiver([]).await;
    let sender = WebhookSender::start(quick());
    sender.deliver(Delivery::new(url, b"{}".to_vec(), None));
    let got = next(&mut received).await;
    assert_eq!(&got.body[..], b"{}");
    assert!(got.headers.get(SIGNATURE_HEADER).is_none());
    assert!(got.headers.get(TIMESTAMP_HEADER).is_none());
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let (url, mut received) = receiver([
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::INTERNAL_SERVER_ERROR,
    ])
    .await;
    let sender = WebhookSender::start(quick());
    sender.deliver(Delivery::new(
        url,
        br#"{"n":1}"#.to_vec(),
        Some("k".to_owned()),
    ));

    let attempts = [
        next(&mut received).await,
        next(&mut received).await,
        next(&mut received).await,
    ];
    let id = attempts[0].header(DELIVERY_HEADER);
    for (n, attempt) in attempts.iter().enumerate() {
        assert_eq!(&attempt.body[..], br#"{"n":1}"#);
        assert_eq!(
            attempt.header(DELIVERY_HEADER),
            id,
            "one delivery id for all attempts"
        );
        assert_eq!(attempt.header(ATTEMPT_HEADER), (n + 1).to_string());
        let timestamp = attempt.header(TIMESTAMP_HEADER).parse().unwrap();
        assert!(verify(
            "k",
            timestamp,
            &attempt.body,
            attempt.header(SIGNATURE_HEADER)
        ));
    }

    let stats = stats_until(&sender, |s| s.delivered == 1).await;
    assert_eq!(
        stats,
        WebhookStats {
            queued: 1,
            delivered: 1,
            retried: 2,
            ..WebhookStats::default()
        }
    );
    assert!(received.try_recv().is_err(), "no attempt after success");
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (url, mut received) = receiver([StatusCode::BAD_REQUEST]).await;
    let sender = WebhookSender::start(quick());
    sender.deliver(Delivery::new(url.clone(), b"1".to_vec(), None));
    sender.deliver(Delivery::new(url, b"2".to_vec(), None));

    // Same URL, so in order: had the 400 been retried, the retry would come before "2".
    assert_eq!(&next(&mut received).await.body[..], b"1");
    assert_eq!(&next(&mut received).await.body[..], b"2");
    let stats = stats_until(&sender, |s| s.delivered == 1).await;
    assert_eq!(
        stats,
        WebhookStats {
            queued: 2,
            delivered: 1,
            rejected: 1,
            ..WebhookStats::default()
        }
    );
    assert!(received.try_recv().is_err());
}

#[tokio::test]
async fn too_many_requests_and_request_timeout_are_retried() {
    let (url, mut received) =
        receiver([StatusCode::TOO_MANY_REQUESTS, StatusCode::REQUEST_TIMEOUT]).await;
    let sender = WebhookSender::start(quick());
    sender.deliver(Delivery::new(url, b"{}".to_vec(), None));
    for _ in 0..3 {
        next(&mut received).await;
    }
    let stats = stats_until(&sender, |s| s.delivered == 1).await;
    assert_eq!((stats.retried, stats.rejected), (2, 0));
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let (url, mut received) = receiver([StatusCode::SERVICE_UNAVAILABLE; 10]).await;
    let sender = WebhookSender::start(WebhookConfig {
        max_attempts: 3,
        ..quick()
    });
    sender.deliver(Delivery::new(url, b"{}".to_vec(), None));
    let stats = stats_until(&sender, |s| s.failed == 1).await;
    assert_eq!(
        stats,
        WebhookStats {
            queued: 1,
            retried: 2,
            failed: 1,
            ..WebhookStats::default()
        }
    );
    for _ in 0..3 {
        next(&mut received).await;
    }
    assert!(received.try_recv().is_err());
}

#[tokio::test]
async fn same_url_in_submission_order_even_across_retries() {
    let (url, mut received) = receiver([StatusCode::BAD_GATEWAY]).await;
    let sender = WebhookSender::start(quick());
    for n in 0..20 {
        sender.deliver(Delivery::new(url.clone(), n.to_string().into_bytes(), None));
    }
    let mut bodies = Vec::new();
    for _ in 0..21 {
        bodies.push(String::from_utf8(next(&mut received).await.body.to_vec()).unwrap());
    }
    let mut expected = vec!["0".to_owned()];
    expected.extend((0..20).map(|n| n.to_string()));
    assert_eq!(bodies, expected);
    let stats = stats_until(&sender, |s| s.delivered == 20).await;
    assert_eq!(stats.retried, 1);
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    let sender = WebhookSender::start(quick());
    for url in [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "not a url",
        "",
    ] {
        sender.deliver(Delivery::new(url, b"{}".to_vec(), None));
    }
    assert_eq!(
        sender.stats(),
        WebhookStats {
            failed: 4,
            ..WebhookStats::default()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_and_hanging_receivers_do_not_delay_others() {
    let dead = dead_address().await;
    let (hanging, mut connections) = hanging_address().await;
    let (live, mut received) = receiver([]).await;
    // Long delays, and only two requests in flight at once: were a stuck receiver able to hold
    // up others, the live one would wait for seconds.
    let sender = WebhookSender::start(WebhookConfig {
        max_concurrent_requests: 2,
        attempt_timeout: Duration::from_secs(30),
        initial_backoff: Duration::from_secs(30),
        max_backoff: Duration::from_secs(30),
        ..local()
    });
    for n in 0..10 {
        let body = format!("{{\"n\":{n}}}").into_bytes();
        sender.deliver(Delivery::new(
            format!("http://{dead}/hook"),
            body.clone(),
            None,
        ));
        sender.deliver(Delivery::new(format!("http://{hanging}/hook"), body, None));
    }
    // The hanging receiver holds one of the two request slots.
    tokio::time::timeout(DEADLINE, connections.recv())
        .await
        .expect("the hanging receiver was never called")
        .unwrap();

    let start = Instant::now();
    sender.deliver(Delivery::new(live, b"live".to_vec(), None));
    let got = tokio::time::timeout(Duration::from_secs(2), received.recv())
        .await
        .expect("the live receiver was held up by the dead or hanging ones")
        .unwrap();
    assert_eq!(&got.body[..], b"live");
    assert!(start.elapsed() < Duration::from_secs(2));
    let stats = stats_until(&sender, |s| s.delivered == 1).await;
    assert_eq!((stats.failed, stats.dropped), (0, 0));
}

// The default (current-thread) runtime cannot run the background tasks while this test's loop
// runs, so exactly `queue_capacity` deliveries get in.
#[tokio::test]
async fn a_full_queue_drops_and_counts_without_blocking() {
    let (url, mut received) = receiver([]).await;
    let sender = WebhookSender::start(WebhookConfig {
        queue_capacity: 4,
        ..quick()
    });
    let start = Instant::now();
    for n in 0..1000 {
        sender.deliver(Delivery::new(url.clone(), n.to_string().into_bytes(), None));
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(1),
        "1000 deliver calls took {elapsed:?}"
    );
    assert_eq!(
        sender.stats(),
        WebhookStats {
            queued: 4,
            dropped: 996,
            ..WebhookStats::default()
        }
    );

    for n in 0..4 {
        assert_eq!(next(&mut received).await.body, n.to_string());
    }
    let stats = stats_until(&sender, |s| s.delivered == 4).await;
    assert_eq!(stats.dropped, 996);
    assert!(received.try_recv().is_err());
}

#[tokio::test]
async fn a_full_backlog_for_one_url_drops() {
    let dead = dead_address().await;
    let sender = WebhookSender::start(WebhookConfig {
        max_pending_per_url: 3,
        initial_backoff: Duration::from_secs(30),
        ..local()
    });
    for _ in 0..10 {
        sender.deliver(Delivery::new(
            format!("http://{dead}/"),
            b"{}".to_vec(),
            None,
        ));
    }
    let stats = stats_until(&sender, |s| s.dropped == 7).await;
    assert_eq!((stats.queued, stats.failed), (10, 0));
}
