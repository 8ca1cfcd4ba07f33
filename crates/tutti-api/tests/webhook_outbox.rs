//! Where webhooks may go (the outbound rule) and what survives a restart (the outbox), against
//! real HTTP receivers on 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use common::MemoryMedia;
use tutti_api::webhooks::{
    Delivery, WebhookConfig, WebhookSender, WebhookStats, ATTEMPT_HEADER, DELIVERY_HEADER,
};
use tutti_conference::outbound::OutboundPolicy;
use tutti_conference::ConferenceService;
use tutti_store::SqliteStore;

/// How long any expected event may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

/// One request: delivery id, attempt number, body, and what was answered.
type Hit = (String, u32, String, u16);

/// A receiver that answers 503 while it is down and 200 once it is up, and logs every request.
#[derive(Clone, Default)]
struct Receiver {
    up: Arc<AtomicBool>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let status = if receiver.up.load(Ordering::SeqCst) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    receiver.hits.lock().unwrap().push((
        header(DELIVERY_HEADER),
        header(ATTEMPT_HEADER).parse().unwrap_or(0),
        String::from_utf8_lossy(&body).into_owned(),
        status.as_u16(),
    ));
    status
}

impl Receiver {
    /// Starts on `runtime`; its hook URL.
    fn start(&self, runtime: &tokio::runtime::Runtime) -> String {
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(self.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}/hook")
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

/// Polls `check` until it gives a value, for at most [`DEADLINE`]; `what` names the wait and
/// `now` shows where things stand when it fails.
fn wait_for<T, S: std::fmt::Debug>(what: &str, mut check: impl FnMut() -> Result<T, S>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match check() {
            Ok(value) => return value,
            Err(now) => assert!(Instant::now() < deadline, "{what}: {now:#?}"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `value` when it satisfies `done`, else the value as the reason to wait on.
fn when<T>(value: T, done: impl FnOnce(&T) -> bool) -> Result<T, T> {
    if done(&value) {
        Ok(value)
    } else {
        Err(value)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn quick(outbound: OutboundPolicy) -> WebhookConfig {
    WebhookConfig {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        attempt_timeout: Duration::from_secs(2),
        max_attempts: 1000,
        outbound,
        ..WebhookConfig::default()
    }
}

#[test]
fn the_default_rule_keeps_webhooks_away_from_local_and_private_addresses() {
    let receivers = runtime();
    let receiver = Receiver::default();
    receiver.up.store(true, Ordering::SeqCst);
    let url = receiver.start(&receivers);
    let port = url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let senders = runtime();
    let _inside = senders.enter();

    let sender = WebhookSender::start(WebhookConfig {
        max_attempts: 2,
        ..quick(OutboundPolicy::default())
    });
    let refused_at_once = [
        url.clone(),
        format!("http://[::1]:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/hook".to_owned(),
        format!("http://user:pass@127.0.0.1:{port}/hook"),
        "gopher://127.0.0.1:70/_x".to_owned(),
        "file:///etc/passwd".to_owned(),
    ];
    for url in &refused_at_once {
        sender.deliver(Delivery::new(url.clone(), b"{}".to_vec(), None));
    }
    assert_eq!(
        sender.stats(),
        WebhookStats {
            failed: refused_at_once.len() as u64,
            ..WebhookStats::default()
        }
    );
    // A name is refused when it resolves: localhost has only loopback addresses.
    sender.deliver(Delivery::new(
        format!("http://localhost:{port}/hook"),
        b"{}".to_vec(),
        None,
    ));
    let expected = refused_at_once.len() as u64 + 1;
    let stats = wait_for("refused", || when(sender.stats(), |s| s.failed == expected));
    assert_eq!((stats.queued, stats.retried, stats.delivered), (1, 1, 0));
    assert!(receiver.hits().is_empty(), "{:?}", receiver.hits());

    // Listed with its port, the receiver is called; on another port it is not.
    let listed = OutboundPolicy::allowing([format!("127.0.0.1:{port}").as_str()]).unwrap();
    let sender = WebhookSender::start(quick(listed));
    sender.deliver(Delivery::new(url.clone(), b"{}".to_vec(), None));
    sender.deliver(Delivery::new(
        "http://127.0.0.1:9/hook",
        b"{}".to_vec(),
        None,
    ));
    let stats = wait_for("delivered", || when(sender.stats(), |s| s.delivered == 1));
    assert_eq!((stats.queued, stats.failed), (1, 1));
    assert_eq!(receiver.hits().len(), 1);
}

#[test]
fn kept_deliveries_survive_a_restart_and_arrive_once_with_their_ids() {
    let database = std::env::temp_dir().join(format!("tutti-webhooks-{}.db", uuid::Uuid::new_v4()));
    let service = || {
        ConferenceService::new(
            Arc::new(SqliteStore::open(&database).unwrap()),
            Arc::new(MemoryMedia::default()),
            Duration::from_secs(3600),
        )
    };
    let receivers = runtime();
    let receiver = Receiver::default();
    let url = receiver.start(&receivers);
    let config = || quick(OutboundPolicy::allowing(["127.0.0.1"]).unwrap());
    let bodies: Vec<String> = (0..5).map(|n| format!("{{\"n\":{n}}}")).collect();

    // The receiver is down: every delivery is attempted, refused, and kept for a retry.
    let first = runtime();
    let before = service();
    {
        let _inside = first.enter();
        let sender = WebhookSender::start_with_outbox(config(), before.clone());
        for body in &bodies {
            sender.deliver(Delivery::new(url.clone(), body.clone(), None));
        }
    }
    // The first is retried, holding back the later ones to the same URL.
    let hits = wait_for("the first delivery retried", || {
        when(receiver.hits(), |hits| hits.len() >= 2)
    });
    let kept = wait_for("attempts recorded", || {
        when(before.outbox_pending().unwrap(), |kept| {
            kept.first().is_some_and(|d| d.attempts >= 2)
        })
    });
    let kept_bodies: Vec<String> = kept
        .iter()
        .map(|d| String::from_utf8(d.body.clone()).unwrap())
        .collect();
    assert_eq!(kept_bodies, bodies, "every delivery kept, in order");
    assert!(
        hits.iter()
            .all(|h| h.0 == kept[0].id.to_string() && h.3 == 503),
        "{hits:?}"
    );
    let ids: HashMap<String, String> = kept_bodies
        .into_iter()
        .zip(kept.iter().map(|d| d.id.to_string()))
        .collect();

    // The process dies: its tasks stop mid-retry, its database is closed.
    first.shutdown_background();
    drop(before);
    let attempts_before = receiver.hits().len();

    // A new process over the same database, and the receiver comes back.
    let second = runtime();
    let after = service();
    let _inside = second.enter();
    let sender = WebhookSender::start_with_outbox(config(), after.clone());
    receiver.up.store(true, Ordering::SeqCst);
    let stats = wait_for("all delivered", || {
        when(sender.stats(), |s| s.delivered == bodies.len() as u64)
    });
    assert_eq!((stats.failed, stats.dropped, stats.rejected), (0, 0, 0));
    wait_for("the outbox emptied", || {
        when(after.outbox_pending().unwrap(), Vec::is_empty)
    });

    let hits = receiver.hits();
    let delivered: Vec<&Hit> = hits.iter().filter(|h| h.3 == 200).collect();
    assert_eq!(
        delivered.iter().map(|h| h.2.clone()).collect::<Vec<_>>(),
        bodies,
        "each delivered once, in order"
    );
    for (id, attempt, body, _) in delivered {
        assert_eq!(id, &ids[body], "the same delivery id across the restart");
        if body == &bodies[0] {
            assert!(*attempt > 2, "the attempt count went on: {attempt}");
        } else {
            assert_eq!(*attempt, 1, "never attempted before the restart");
        }
    }
    assert!(hits.len() > attempts_before);
    drop(sender);
    drop(after);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", database.display()));
    }
}

#[test]
fn deliveries_taken_over_from_another_node_go_out_with_their_ids_and_attempts() {
    let service = ConferenceService::new(
        Arc::new(SqliteStore::in_memory().unwrap()),
        Arc::new(MemoryMedia::default()),
        Duration::from_secs(3600),
    );
    let receivers = runtime();
    let receiver = Receiver::default();
    receiver.up.store(true, Ordering::SeqCst);
    let url = receiver.start(&receivers);
    let sender_runtime = runtime();
    let _inside = sender_runtime.enter();
    let sender = WebhookSender::start_with_outbox(
        quick(OutboundPolicy::allowing(["127.0.0.1"]).unwrap()),
        service.clone(),
    );
    // What a node that is gone left in the shared outbox, now this node's: one delivery
    // attempted twice, and one whose URL the rule refuses here.
    let taken = tutti_conference::outbox::OutboxRecord {
        id: uuid::Uuid::now_v7(),
        url,
        body: b"{\"left\":1}".to_vec(),
        secret: None,
        attempts: 2,
        created: 1,
    };
    let refused = tutti_conference::outbox::OutboxRecord {
        id: uuid::Uuid::now_v7(),
        url: "http://10.0.0.1/hook".into(),
        ..taken.clone()
    };
    service.outbox_add(&taken).unwrap();
    service.outbox_add(&refused).unwrap();
    sender.resume(vec![taken.clone(), refused]);
    let hits = wait_for("the taken-over delivery", || {
        when(receiver.hits(), |hits| !hits.is_empty())
    });
    let (id, attempt, body, status) = &hits[0];
    assert_eq!(
        (id.as_str(), *attempt, body.as_str(), *status),
        (taken.id.to_string().as_str(), 3, "{\"left\":1}", 200)
    );
    wait_for("the outbox emptied", || {
        when(service.outbox_pending().unwrap(), Vec::is_empty)
    });
    assert_eq!(receiver.hits().len(), 1, "the refused URL is never called");
}
