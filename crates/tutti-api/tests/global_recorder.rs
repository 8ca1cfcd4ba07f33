//! The API's recorder as the process' global one (as the server installs it): what any code
//! records with the plain `metrics` macros, on any thread, shows in `/metrics`. A test process
//! of its own, since a process has one global recorder.

mod common;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;
use tutti_api::{router, AppState};

#[tokio::test]
async fn series_recorded_anywhere_in_the_process_show_in_metrics() {
    let state = AppState::new(common::memory_service(), "tutti@test");
    assert!(state.metrics.install_global());
    assert!(
        !AppState::new(common::memory_service(), "tutti@test")
            .metrics
            .install_global(),
        "only one recorder is global"
    );
    std::thread::spawn(|| {
        metrics::counter!("tutti_cluster_events_total", "direction" => "sent").increment(2);
        metrics::gauge!("tutti_cluster_rooms").set(3.0);
    })
    .join()
    .unwrap();
    let response = router(state)
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    for line in [
        "# TYPE tutti_cluster_events_total counter",
        "tutti_cluster_events_total{direction=\"sent\"} 2",
        "# TYPE tutti_cluster_rooms gauge",
        "tutti_cluster_rooms 3",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}
