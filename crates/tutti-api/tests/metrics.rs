//! `/metrics` at the router level: every series with its type, route labels that are templates,
//! the bounded per-room series, and the tick histogram as the media plane counted it.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::MemoryMedia;
use http_body_util::BodyExt;
use tower::ServiceExt;
use tutti_api::webhooks::{WebhookConfig, WebhookSender};
use tutti_api::{router, AppState};
use tutti_conference::ConferenceService;
use tutti_store::SqliteStore;
use uuid::Uuid;

struct Api {
    state: AppState,
    media: Arc<MemoryMedia>,
}

impl Api {
    fn new() -> Self {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let media = Arc::new(MemoryMedia::default());
        let service = ConferenceService::new(store, media.clone(), Duration::from_secs(3600));
        Api {
            state: AppState::new(service, "tutti@test"),
            media,
        }
    }

    async fn call(&self, method: Method, uri: &str, token: Option<&str>, body: &str) -> StatusCode {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("x-auth-token", token);
        }
        let response = router(self.state.clone())
            .oneshot(request.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        response.status()
    }

    async fn scrape(&self) -> String {
        let response = router(self.state.clone())
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4"
        );
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn rooms(&self, sizes: &[(Uuid, u64)]) {
        *self.media.room_sizes.lock().unwrap() = sizes.to_vec();
    }
}

/// The lines of `text` that are samples of `name` (any labels), sorted.
fn samples(text: &str, name: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// Every value of the label `label` in `text`.
fn label_values(text: &str, label: &str) -> BTreeSet<String> {
    let key = format!("{label}=\"");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(&key))
        .map(|(_, rest)| rest.split('"').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_series_is_there_with_its_type() {
    let api = Api::new();
    let state = api
        .state
        .clone()
        .with_webhooks(WebhookSender::start(WebhookConfig::default()))
        .with_metrics_source(Arc::new(|| {
            metrics::counter!("tutti_sip_malformed_total").absolute(3);
        }))
        .with_metrics_source(Arc::new(|| {
            metrics::gauge!("tutti_webrtc_peers").set(2.0);
        }));
    let api = Api { state, ..api };
    api.rooms(&[(Uuid::from_u128(1), 2)]);
    assert_eq!(
        api.call(Method::GET, "/healthz", None, "").await,
        StatusCode::OK
    );
    let text = api.scrape().await;
    for (name, kind) in [
        ("tutti_rooms", "gauge"),
        ("tutti_participants", "gauge"),
        ("tutti_room_participants", "gauge"),
        ("tutti_tick_duration_seconds", "histogram"),
        ("tutti_tick_overruns_total", "counter"),
        ("tutti_rtp_packets_total", "counter"),
        ("tutti_rtp_lost_packets_total", "counter"),
        ("tutti_rtp_dropped_total", "counter"),
        ("tutti_audio_packets_total", "counter"),
        ("tutti_api_requests_total", "counter"),
        ("tutti_api_request_duration_seconds", "histogram"),
        ("tutti_webhooks_total", "counter"),
        ("tutti_sip_malformed_total", "counter"),
        ("tutti_webrtc_peers", "gauge"),
    ] {
        let line = format!("# TYPE {name} {kind}");
        assert_eq!(
            text.lines().filter(|l| *l == line).count(),
            1,
            "{line:?} once in\n{text}"
        );
        // The source's series are described where they are recorded, the rest here.
        assert!(
            ["tutti_sip_malformed_total", "tutti_webrtc_peers"].contains(&name)
                || text
                    .lines()
                    .any(|l| l.starts_with(&format!("# HELP {name} "))),
            "help for {name} in\n{text}"
        );
    }
    for line in [
        "tutti_rooms 1",
        "tutti_participants 2",
        "tutti_rtp_packets_total{direction=\"out\"} 0",
        "tutti_webhooks_total{outcome=\"delivered\"} 0",
        "tutti_api_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1",
        "tutti_api_request_duration_seconds_bucket{route=\"/healthz\",method=\"GET\",le=\"+Inf\"} 1",
        "tutti_sip_malformed_total 3",
        "tutti_webrtc_peers 2",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn route_labels_are_route_templates_never_paths() {
    let api = Api::new();
    let account = Uuid::new_v4();
    let conference = Uuid::new_v4();
    let paths = [
        format!("/v2/accounts/{account}/conferences"),
        format!("/v2/accounts/{account}/conferences/{conference}"),
        format!("/v2/accounts/{account}/conferences/{conference}/participants/7"),
        // Not a route: not counted at all.
        format!("/no/such/path/{conference}"),
    ];
    for path in &paths {
        api.call(Method::GET, path, Some("bad-token"), "").await;
    }
    api.call(Method::from_bytes(b"BREW").unwrap(), "/healthz", None, "")
        .await;
    let text = api.scrape().await;
    assert!(!text.contains(&account.to_string()), "{text}");
    assert!(!text.contains(&conference.to_string()), "{text}");
    assert_eq!(
        label_values(&text, "route"),
        BTreeSet::from(
            [
                "/healthz",
                "/v2/accounts/{account_id}/conferences",
                "/v2/accounts/{account_id}/conferences/{conference_id}",
                "/v2/accounts/{account_id}/conferences/{conference_id}/participants/{participant_id}",
            ]
            .map(String::from)
        ),
        "{text}"
    );
    assert_eq!(
        label_values(&text, "method"),
        BTreeSet::from(["GET", "other"].map(String::from))
    );
}

#[tokio::test]
async fn the_largest_rooms_have_their_own_series_and_the_rest_sum_into_other() {
    let api = Api::new();
    let state = api.state.clone().with_room_series(2);
    let api = Api { state, ..api };
    let [a, b, c, d] = [1, 2, 3, 4].map(Uuid::from_u128);
    api.rooms(&[(c, 2), (a, 5), (d, 1), (b, 3)]);
    assert_eq!(
        samples(&api.scrape().await, "tutti_room_participants"),
        [
            format!("tutti_room_participants{{room=\"{}\"}} 5", a.simple()),
            format!("tutti_room_participants{{room=\"{}\"}} 3", b.simple()),
            "tutti_room_participants{room=\"other\"} 3".to_owned(),
        ]
    );
    // Room a ends, d grows past b: a's series is gone, b's falls into "other".
    api.rooms(&[(c, 2), (d, 9), (b, 3)]);
    assert_eq!(
        samples(&api.scrape().await, "tutti_room_participants"),
        [
            format!("tutti_room_participants{{room=\"{}\"}} 3", b.simple()),
            format!("tutti_room_participants{{room=\"{}\"}} 9", d.simple()),
            "tutti_room_participants{room=\"other\"} 2".to_owned(),
        ]
    );
    api.rooms(&[]);
    assert_eq!(
        samples(&api.scrape().await, "tutti_room_participants"),
        ["tutti_room_participants{room=\"other\"} 0"]
    );
}

#[tokio::test]
async fn twenty_rooms_have_their_own_series_unless_configured() {
    let api = Api::new();
    let rooms: Vec<(Uuid, u64)> = (1..=25).map(|i| (Uuid::from_u128(i), i as u64)).collect();
    api.rooms(&rooms);
    let lines = samples(&api.scrape().await, "tutti_room_participants");
    assert_eq!(lines.len(), 21, "{lines:#?}");
    // Rooms 1 to 5 are the smallest: 15 participants in all.
    assert!(lines.contains(&"tutti_room_participants{room=\"other\"} 15".to_owned()));
    assert!(!lines
        .iter()
        .any(|l| l.contains(&Uuid::from_u128(5).simple().to_string())));
    assert!(lines
        .iter()
        .any(|l| l.contains(&Uuid::from_u128(6).simple().to_string())));
}

/// The value of the sample line `name` in `text`.
fn value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_tick_histogram_is_the_one_the_media_plane_counted() {
    let api = Api::new();
    let check = |text: &str, buckets: [u64; 4], sum: f64| {
        for (le, count) in ["0.001", "0.005", "0.02", "+Inf"].iter().zip(buckets) {
            let name = format!("tutti_tick_duration_seconds_bucket{{le=\"{le}\"}}");
            assert_eq!(value(text, &name), count as f64, "{name} in\n{text}");
        }
        assert_eq!(
            value(text, "tutti_tick_duration_seconds_count"),
            buckets[3] as f64
        );
        let rendered = value(text, "tutti_tick_duration_seconds_sum");
        assert!((rendered - sum).abs() < 1e-9, "sum {rendered}, not {sum}");
    };
    check(&api.scrape().await, [0, 0, 0, 0], 0.0);
    // Cumulative, as the media plane reports them: 2 ticks up to 1 ms, 3 up to 5 ms, 1 over
    // 20 ms.
    *api.media.ticks.lock().unwrap() = (vec![2, 5, 5, 6], 0.0411);
    check(&api.scrape().await, [2, 5, 5, 6], 0.0411);
    // The same figures again add nothing; new ticks add to them.
    check(&api.scrape().await, [2, 5, 5, 6], 0.0411);
    *api.media.ticks.lock().unwrap() = (vec![3, 6, 9, 10], 0.1);
    check(&api.scrape().await, [3, 6, 9, 10], 0.1);
}
