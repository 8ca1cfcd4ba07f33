//! `/metrics` in Prometheus' text format: the media plane's gauges and tick histogram, and the
//! API's requests by route, method and status.
//!
//! Written out directly: the media figures are already aggregated (the engine keeps lock-free
//! histograms), so a collector library would only copy them into its own types per scrape.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Requests answered, by route template, method and status.
#[derive(Debug, Default)]
pub struct ApiMetrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
}

/// Counts every request by its route template (not its path, so ids do not explode the
/// series), method and status.
pub(crate) async fn count_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    if let Ok(mut requests) = state.metrics.requests.lock() {
        *requests
            .entry((route, method, response.status().as_u16()))
            .or_default() += 1;
    }
    response
}

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`.
pub(crate) async fn render(State(state): State<AppState>) -> Response {
    let service = state.service.clone();
    let media = tokio::task::spawn_blocking(move || service.media_metrics())
        .await
        .unwrap_or_default();
    let mut out = String::new();
    help(
        &mut out,
        "tutti_rooms",
        "gauge",
        "Conference rooms running.",
    );
    let _ = writeln!(out, "tutti_rooms {}", media.rooms);
    help(
        &mut out,
        "tutti_participants",
        "gauge",
        "Participants in running rooms.",
    );
    let _ = writeln!(out, "tutti_participants {}", media.participants);
    help(
        &mut out,
        "tutti_tick_duration_seconds",
        "histogram",
        "Time one mixer tick takes, all mixer threads.",
    );
    for (bound, count) in media.tick_bucket_bounds.iter().zip(&media.tick_buckets) {
        let _ = writeln!(
            out,
            "tutti_tick_duration_seconds_bucket{{le=\"{bound}\"}} {count}"
        );
    }
    let _ = writeln!(
        out,
        "tutti_tick_duration_seconds_bucket{{le=\"+Inf\"}} {}",
        media.ticks
    );
    let _ = writeln!(
        out,
        "tutti_tick_duration_seconds_sum {}",
        media.tick_seconds_sum
    );
    let _ = writeln!(out, "tutti_tick_duration_seconds_count {}", media.ticks);
    help(
        &mut out,
        "tutti_tick_overruns_total",
        "counter",
        "Ticks that started more than a whole tick late.",
    );
    let _ = writeln!(out, "tutti_tick_overruns_total {}", media.tick_overruns);
    help(
        &mut out,
        "tutti_rtp_packets",
        "gauge",
        "RTP packets of the participants now in rooms, by direction.",
    );
    let _ = writeln!(
        out,
        "tutti_rtp_packets{{direction=\"in\"}} {}",
        media.rtp_packets_in
    );
    let _ = writeln!(
        out,
        "tutti_rtp_packets{{direction=\"out\"}} {}",
        media.rtp_packets_out
    );
    let _ = writeln!(
        out,
        "tutti_rtp_packets{{direction=\"lost\"}} {}",
        media.rtp_packets_lost
    );
    help(
        &mut out,
        "tutti_rtp_dropped_total",
        "counter",
        "Datagrams the media ports dropped, by reason.",
    );
    for (reason, count) in &media.rtp_dropped {
        let _ = writeln!(
            out,
            "tutti_rtp_dropped_total{{reason=\"{reason}\"}} {count}"
        );
    }
    help(
        &mut out,
        "tutti_audio_packets_total",
        "counter",
        "Audio packets the mixers took from the jitter buffers: decoded, or skipped because they hold silence.",
    );
    let _ = writeln!(
        out,
        "tutti_audio_packets_total{{outcome=\"decoded\"}} {}",
        media.packets_decoded
    );
    let _ = writeln!(
        out,
        "tutti_audio_packets_total{{outcome=\"skipped\"}} {}",
        media.packets_decode_skipped
    );
    help(
        &mut out,
        "tutti_api_requests_total",
        "counter",
        "HTTP requests answered, by route, method and status.",
    );
    if let Ok(requests) = state.metrics.requests.lock() {
        for ((route, method, status), count) in requests.iter() {
            let _ = writeln!(
                out,
                "tutti_api_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {count}",
                escape(route),
                escape(method)
            );
        }
    }
    if let Some(webhooks) = &state.webhooks {
        let stats = webhooks.stats();
        help(
            &mut out,
            "tutti_webhooks_total",
            "counter",
            "Webhook and callback deliveries, by outcome.",
        );
        for (outcome, count) in [
            ("queued", stats.queued),
            ("delivered", stats.delivered),
            ("retried", stats.retried),
            ("failed", stats.failed),
            ("dropped", stats.dropped),
            ("rejected", stats.rejected),
        ] {
            let _ = writeln!(out, "tutti_webhooks_total{{outcome=\"{outcome}\"}} {count}");
        }
    }
    if let Some(more) = &state.more_metrics {
        out.push_str(&(more.0)());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
