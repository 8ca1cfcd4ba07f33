//! `/metrics`: the `metrics` facade recording into a `metrics-exporter-prometheus` recorder,
//! rendered in Prometheus' text format.
//!
//! Each [`AppState`] owns one recorder ([`Metrics`]); the server process installs it as the
//! global recorder too ([`Metrics::install_global`]), so any control-plane code of the process
//! records into it with the plain `metrics` macros. The API's own figures go through
//! [`Metrics::record`], which does not depend on the global recorder, so tests running several
//! states in one process see only their own counts.
//!
//! Two kinds of figures meet here:
//! - events counted where they happen: every request, by its route template (never its path, so
//!   ids never become label values), method and status, and its duration;
//! - lock-free counters that other parts keep for themselves (the media plane's mixer threads,
//!   the WebRTC IO thread, the SIP server, webhook delivery), read at each scrape and stored as
//!   gauges and absolute counters. The media plane's tick histogram arrives already
//!   aggregated: each scrape replays what was added since the previous one.
//!
//! `tutti_room_participants` has one series per room for the largest rooms only (the rest sum
//! into `room="other"`). Its label set changes with every scrape, and the exporter has no way
//! to drop a series on demand, so it is rendered from a recorder made for that scrape: a room
//! that is gone, or no longer among the largest, has no series.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{
    BuildError, Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use tutti_conference::MediaMetrics;
use uuid::Uuid;

use crate::AppState;

/// Rooms that get a `tutti_room_participants` series of their own when nothing else is said.
pub const DEFAULT_ROOM_SERIES: usize = 20;

const REQUESTS: &str = "tutti_api_requests_total";
const REQUEST_DURATION: &str = "tutti_api_request_duration_seconds";
const TICK_DURATION: &str = "tutti_tick_duration_seconds";
const ROOM_PARTICIPANTS: &str = "tutti_room_participants";

/// Upper bounds (seconds) of the request-duration buckets: from a cached answer to a slow
/// store write.
const REQUEST_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Samples replayed into the tick histogram between two drains of the recorder, so that a
/// scrape after a long pause does not hold every tick since in memory at once.
const REPLAY_CHUNK: u64 = 4096;

/// The recorder behind `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    /// The tick histogram as far as it was replayed: counts per bucket (not cumulative) and
    /// the sum of durations.
    replayed: Mutex<(Vec<u64>, f64)>,
}

impl Metrics {
    /// A recorder whose tick histogram has the media plane's buckets (`tick_bounds`, seconds;
    /// none when there is no media plane).
    pub fn new(tick_bounds: &[f64]) -> Self {
        let recorder = Arc::new(builder(tick_bounds).unwrap_or_default().build_recorder());
        let metrics = Self {
            handle: recorder.handle(),
            recorder,
            replayed: Mutex::default(),
        };
        metrics.record(describe);
        metrics
    }

    /// Runs `f`, whose `metrics` macros record here (whatever the global recorder is).
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&*self.recorder, f)
    }

    /// Makes this the process' global recorder, for the `metrics` macros anywhere in the
    /// process. Only one recorder can be global: false if another one already is.
    pub fn install_global(&self) -> bool {
        metrics::set_global_recorder(self.recorder.clone()).is_ok()
    }

    /// Moves samples recorded since the last render into the histograms, so they do not pile
    /// up between scrapes. Cheap; to be called every few seconds.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Stores the media plane's figures: gauges, absolute counters, and the tick histogram's
    /// new samples.
    fn observe_media(&self, media: &MediaMetrics) {
        self.record(|| {
            gauge!("tutti_rooms").set(media.rooms as f64);
            gauge!("tutti_participants").set(media.participants as f64);
            counter!("tutti_tick_overruns_total").absolute(media.tick_overruns);
            counter!("tutti_rtp_packets_total", "direction" => "in").absolute(media.rtp_packets_in);
            counter!("tutti_rtp_packets_total", "direction" => "out")
                .absolute(media.rtp_packets_out);
            counter!("tutti_rtp_lost_packets_total").absolute(media.rtp_packets_lost);
            for &(reason, count) in &media.rtp_dropped {
                counter!("tutti_rtp_dropped_total", "reason" => reason).absolute(count);
            }
            counter!("tutti_audio_packets_total", "outcome" => "decoded")
                .absolute(media.packets_decoded);
            counter!("tutti_audio_packets_total", "outcome" => "skipped")
                .absolute(media.packets_decode_skipped);
        });
        if !media.tick_bucket_bounds.is_empty() {
            self.replay_ticks(media);
        }
    }

    /// Records into the tick histogram the ticks the media plane counted since the previous
    /// scrape: per bucket, as many samples as it gained, at values inside that bucket chosen so
    /// that the samples add up to the durations it gained.
    fn replay_ticks(&self, media: &MediaMetrics) {
        let Ok(mut replayed) = self.replayed.lock() else {
            return;
        };
        let counts: Vec<u64> = media
            .tick_buckets
            .iter()
            .scan(0, |below, &cumulative| {
                let count = cumulative.saturating_sub(*below);
                *below = cumulative;
                Some(count)
            })
            .collect();
        if replayed.0.len() != counts.len() {
            *replayed = (vec![0; counts.len()], 0.0);
        }
        let gained: Vec<u64> = counts
            .iter()
            .zip(&replayed.0)
            .map(|(now, before)| now.saturating_sub(*before))
            .collect();
        let sum = (media.tick_seconds_sum - replayed.1).max(0.0);
        let values = bucket_values(&media.tick_bucket_bounds, &gained, sum);
        let ticks = self.record(|| histogram!(TICK_DURATION));
        for (value, mut left) in values.into_iter().zip(gained) {
            while left > 0 {
                let chunk = left.min(REPLAY_CHUNK);
                ticks.record_many(value, chunk as usize);
                left -= chunk;
                if left > 0 {
                    self.handle.run_upkeep();
                }
            }
        }
        *replayed = (counts, media.tick_seconds_sum);
    }

    /// The whole exposition: the recorder's series, then the per-room gauge.
    fn render(&self, rooms: &[(Uuid, u64)], room_series: usize) -> String {
        let mut text = self.handle.render();
        text.push_str(&render_rooms(rooms, room_series));
        text
    }
}

/// The exporter, with the buckets of the two histograms (the tick histogram's only when there
/// are bounds: the exporter refuses an empty list).
fn builder(tick_bounds: &[f64]) -> Result<PrometheusBuilder, BuildError> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_owned()), &REQUEST_BUCKETS)?;
    if tick_bounds.is_empty() {
        return Ok(builder);
    }
    builder.set_buckets_for_metric(Matcher::Full(TICK_DURATION.to_owned()), tick_bounds)
}

/// Names, help texts and types of the series this module records.
fn describe() {
    describe_gauge!("tutti_rooms", "Conference rooms running.");
    describe_gauge!("tutti_participants", "Participants in running rooms.");
    describe_histogram!(
        TICK_DURATION,
        "Time one mixer tick takes, all mixer threads."
    );
    describe_counter!(
        "tutti_tick_overruns_total",
        "Ticks that started more than a whole tick late."
    );
    describe_counter!("tutti_rtp_packets_total", "RTP packets, by direction.");
    describe_counter!(
        "tutti_rtp_lost_packets_total",
        "RTP packets lost on the way in (gaps the jitter buffers saw)."
    );
    describe_counter!(
        "tutti_rtp_dropped_total",
        "Datagrams the media ports dropped, by reason."
    );
    describe_counter!(
        "tutti_audio_packets_total",
        "Audio packets the mixers took from the jitter buffers: decoded, or skipped because they hold silence."
    );
    describe_counter!(
        REQUESTS,
        "HTTP requests answered, by route, method and status."
    );
    describe_histogram!(
        REQUEST_DURATION,
        "Time to answer an HTTP request, by route and method."
    );
    describe_counter!(
        "tutti_webhooks_total",
        "Webhook and callback deliveries, by outcome."
    );
}

/// One value per bucket (bounds are the finite upper bounds; `counts` has one more, for the
/// `+Inf` bucket), each inside its bucket, such that `counts[i]` samples at `values[i]` add up
/// to `sum` when the buckets allow it.
fn bucket_values(bounds: &[f64], counts: &[u64], sum: f64) -> Vec<f64> {
    let lower = |i: usize| if i == 0 { 0.0 } else { bounds[i - 1] };
    // Strictly above the lower bound (which belongs to the bucket below), at most the upper.
    let inside = |i: usize, t: f64| {
        let (low, high) = (lower(i), bounds[i]);
        (low + t.clamp(1e-6, 1.0) * (high - low)).min(high)
    };
    let total = |values: &[f64]| -> f64 {
        values
            .iter()
            .zip(counts)
            .map(|(value, &count)| value * count as f64)
            .sum()
    };
    let last = bounds.last().copied().unwrap_or(0.0);
    let beyond = last + last.max(1e-9) * 1e-6;
    let overflow = counts.get(bounds.len()).copied().unwrap_or(0);
    let mut values: Vec<f64>;
    if overflow > 0 {
        // The +Inf bucket has no upper bound: the finite buckets take their middles, the
        // overflowing samples the rest.
        values = (0..bounds.len()).map(|i| inside(i, 0.5)).collect();
        let rest = (sum - total(&values)) / overflow as f64;
        values.push(rest.max(beyond));
    } else {
        let lows: Vec<f64> = (0..bounds.len()).map(lower).collect();
        let (low, high) = (total(&lows), total(bounds));
        let t = if high > low {
            (sum - low) / (high - low)
        } else {
            1.0
        };
        values = (0..bounds.len()).map(|i| inside(i, t)).collect();
        values.push(beyond);
    }
    values
}

/// `tutti_room_participants`: the `largest` rooms with most participants each on its own
/// series (by conference id, 32 hex digits as the Kazoo face writes it), the others summed into `room="other"` (0 when there are none).
fn render_rooms(rooms: &[(Uuid, u64)], largest: usize) -> String {
    let mut rooms = rooms.to_vec();
    rooms.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let other: u64 = rooms.iter().skip(largest).map(|(_, count)| count).sum();
    let recorder = PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        describe_gauge!(
            ROOM_PARTICIPANTS,
            "Participants per room, for the largest rooms; room=\"other\" sums the rest."
        );
        for (room, count) in rooms.iter().take(largest) {
            gauge!(ROOM_PARTICIPANTS, "room" => room.simple().to_string()).set(*count as f64);
        }
        gauge!(ROOM_PARTICIPANTS, "room" => "other").set(other as f64);
    });
    recorder.handle().render()
}

/// A method as a label value: the standard ones by name, any other as `other` (a client can
/// send any token as a method).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts every request by its route template (not its path, so ids do not explode the
/// series), method and status, and times it.
pub(crate) async fn count_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    state.metrics.record(|| {
        counter!(REQUESTS, "route" => route.clone(), "method" => method, "status" => status)
            .increment(1);
        histogram!(REQUEST_DURATION, "route" => route, "method" => method)
            .record(started.elapsed().as_secs_f64());
    });
    response
}

/// `GET /metrics`.
pub(crate) async fn render(State(state): State<AppState>) -> Response {
    let text = tokio::task::spawn_blocking(move || {
        let media = state.service.media_metrics();
        state.metrics.observe_media(&media);
        state.metrics.record(|| {
            if let Some(webhooks) = &state.webhooks {
                let stats = webhooks.stats();
                for (outcome, count) in [
                    ("queued", stats.queued),
                    ("delivered", stats.delivered),
                    ("retried", stats.retried),
                    ("failed", stats.failed),
                    ("dropped", stats.dropped),
                    ("rejected", stats.rejected),
                ] {
                    counter!("tutti_webhooks_total", "outcome" => outcome).absolute(count);
                }
            }
            for source in &state.metrics_sources {
                (source.0)();
            }
        });
        state
            .metrics
            .render(&media.room_participants, state.room_series)
    })
    .await
    .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: [f64; 3] = [0.001, 0.002, 0.005];

    fn bucket_of(value: f64) -> usize {
        BOUNDS
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(BOUNDS.len())
    }

    fn check(counts: [u64; 4], sum: f64) {
        let values = bucket_values(&BOUNDS, &counts, sum);
        assert_eq!(values.len(), 4);
        for (i, (&value, &count)) in values.iter().zip(&counts).enumerate() {
            if count > 0 {
                assert_eq!(bucket_of(value), i, "{value} for bucket {i} of {counts:?}");
            }
        }
        let total: f64 = values.iter().zip(counts).map(|(v, c)| v * c as f64).sum();
        assert!((total - sum).abs() < 1e-12, "{total} against {sum}");
    }

    #[test]
    fn replayed_samples_keep_their_buckets_and_their_sum() {
        check([10, 0, 0, 0], 0.004);
        check([1, 1, 1, 0], 0.0005 + 0.0015 + 0.004);
        check([0, 2, 0, 0], 0.002 + 0.0011);
        check([3, 0, 2, 1], 3.0 * 0.0002 + 2.0 * 0.003 + 0.02);
        check([0, 0, 0, 0], 0.0);
    }

    #[test]
    fn a_method_outside_the_standard_ones_is_other() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
