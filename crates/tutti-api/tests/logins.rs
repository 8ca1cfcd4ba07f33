//! Failed logins are limited per client address: after the limit, Kazoo's `PUT /v2/api_auth`
//! and FoneStorm's `POST /v2/auth` answer 429 with `Retry-After` in their own shapes, to the
//! right key too, while other addresses log in as before.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use tutti_api::{router, AppState, LoginLimit};
use tutti_conference::ConferenceService;
use tutti_store::SqliteStore;

/// Three failures a minute: one drains every 20 seconds.
const LIMIT: LoginLimit = LoginLimit {
    failures: 3,
    per: Duration::from_secs(60),
    max_addresses: 100,
};

fn state() -> (AppState, String) {
    let service = ConferenceService::new(
        Arc::new(SqliteStore::in_memory().unwrap()),
        Arc::new(common::MemoryMedia::default()),
        Duration::from_secs(3600),
    );
    let key = service.create_account("acme").unwrap().api_key;
    (
        AppState::new(service, "tutti@test").with_login_limit(LIMIT),
        key,
    )
}

/// A login from `from`: Kazoo's when `kazoo`, else FoneStorm's. Status, `Retry-After`, body.
async fn login(
    state: &AppState,
    from: &str,
    kazoo: bool,
    key: &str,
) -> (StatusCode, Option<String>, Value) {
    let (method, uri, body) = if kazoo {
        (
            Method::PUT,
            "/v2/api_auth",
            json!({"data": {"api_key": key}}),
        )
    } else {
        (Method::POST, "/v2/auth", json!({"api_key": key}))
    };
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let address: IpAddr = from.parse().unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(address, 40_000)));
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, retry, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn an_address_that_keeps_failing_is_refused_in_each_faces_shape() {
    let (state, key) = state();
    for kazoo in [true, false, true] {
        let (status, retry, _) = login(&state, "192.0.2.1", kazoo, "wrong").await;
        assert_eq!((status, retry), (StatusCode::UNAUTHORIZED, None));
    }

    // Kazoo's envelope, even with the right key: a refusal says nothing about the key.
    let (status, retry, body) = login(&state, "192.0.2.1", true, &key).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry.as_deref(), Some("20"));
    assert_eq!(body["status"], "error");
    assert_eq!(body["error"], "429");
    assert_eq!(body["message"], "too_many_requests");
    assert_eq!(
        body["data"],
        json!({"message": "too many failed logins from this address; try again in 20 seconds", "retry_after": 20})
    );

    // FoneStorm's shape, counted with the same address's Kazoo failures.
    let (status, retry, body) = login(&state, "192.0.2.1", false, &key).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry.as_deref(), Some("20"));
    assert_eq!(
        body,
        json!({
            "error": "too_many_requests",
            "message": "too many failed logins from this address; try again in 20 seconds",
            "status_code": 429,
        })
    );

    // Another address logs in as before.
    let (status, _, body) = login(&state, "192.0.2.2", true, &key).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _, body) = login(&state, "192.0.2.2", false, &key).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn successful_logins_do_not_count_and_do_not_forgive() {
    let (state, key) = state();
    let from = "2001:db8::7";
    let (status, _, _) = login(&state, from, true, "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for kazoo in [true, false, true, false, true] {
        let (status, _, body) = login(&state, from, kazoo, &key).await;
        assert!(status.is_success(), "{status} {body}");
    }
    for _ in 0..2 {
        let (status, _, _) = login(&state, from, false, "wrong").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Three failures in all; the same /64 is the same client.
    let (status, _, _) = login(&state, "2001:db8::8", false, &key).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_counts_each_connections_own_address() {
    let (state, key) = state();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(tutti_api::serve(listener, state, std::future::pending()));
    let attempt = |from: [u8; 4], key: String| async move {
        let client = reqwest::Client::builder()
            .local_address(IpAddr::from(from))
            .build()
            .unwrap();
        client
            .put(format!("http://{address}/v2/api_auth"))
            .body(json!({"data": {"api_key": key}}).to_string())
            .send()
            .await
            .unwrap()
            .status()
    };
    for _ in 0..3 {
        assert_eq!(attempt([127, 0, 0, 1], "wrong".into()).await, 401);
    }
    assert_eq!(attempt([127, 0, 0, 1], key.clone()).await, 429);
    // 127.0.0.2 is another client of the same loopback: not refused.
    assert_eq!(attempt([127, 0, 0, 2], key).await, 201);
}
