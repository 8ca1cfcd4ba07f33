//! What the run reads from outside the media: a process's CPU time from `/proc`, and tutti's
//! Prometheus `/metrics` (the tick histogram and overruns), as deltas over the window.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

/// CPU seconds (user + system) a process has used so far; `None` if it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu(&stat, clock_ticks())
}

/// The loadgen's own CPU seconds.
pub fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat_cpu(&stat, clock_ticks())
}

fn clock_ticks() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

/// utime + stime of a `/proc/<pid>/stat` line, in seconds. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat_cpu(stat: &str, ticks_per_second: f64) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15 (1-based over the whole line).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second)
}

/// The machine's load average over 1, 5 and 15 minutes.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// A reading of CPU time against the wall clock.
#[derive(Clone, Copy, Debug)]
pub struct CpuMark {
    at: Instant,
    seconds: Option<f64>,
}

impl CpuMark {
    /// Reads `pid`'s CPU time now (`None`: the loadgen itself).
    pub fn now(pid: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            seconds: match pid {
                Some(pid) => cpu_seconds(pid),
                None => own_cpu_seconds(),
            },
        }
    }

    /// Percent of one core used between `self` and `later`.
    pub fn percent_until(&self, later: &CpuMark) -> Option<f64> {
        let wall = later.at.duration_since(self.at).as_secs_f64();
        let used = later.seconds? - self.seconds?;
        (wall > 0.0).then(|| 100.0 * used / wall)
    }
}

/// The figures of tutti's `/metrics` that the summary reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    /// `tutti_tick_duration_seconds_bucket` by upper bound (seconds), cumulative.
    pub tick_buckets: Vec<(f64, f64)>,
    /// `tutti_tick_duration_seconds_count`.
    pub ticks: f64,
    /// `tutti_tick_duration_seconds_sum`.
    pub tick_seconds: f64,
    /// `tutti_tick_overruns_total`.
    pub overruns: f64,
    /// `tutti_rtp_dropped_total` by reason.
    pub dropped: BTreeMap<String, f64>,
    /// `tutti_participants`.
    pub participants: f64,
}

impl Metrics {
    /// Parses Prometheus text, keeping the series above.
    pub fn parse(text: &str) -> Self {
        let mut metrics = Metrics::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.trim().parse::<f64>() else {
                continue;
            };
            let label = |name: &str| {
                series
                    .split_once(&format!("{name}=\""))
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map(|(v, _)| v.to_owned())
            };
            if series.starts_with("tutti_tick_duration_seconds_bucket") {
                if let Some(bound) = label("le").and_then(|b| b.parse::<f64>().ok()) {
                    metrics.tick_buckets.push((bound, value));
                }
            } else if series == "tutti_tick_duration_seconds_count" {
                metrics.ticks = value;
            } else if series == "tutti_tick_duration_seconds_sum" {
                metrics.tick_seconds = value;
            } else if series == "tutti_tick_overruns_total" {
                metrics.overruns = value;
            } else if series == "tutti_participants" {
                metrics.participants = value;
            } else if series.starts_with("tutti_rtp_dropped_total") {
                if let Some(reason) = label("reason") {
                    metrics.dropped.insert(reason, value);
                }
            }
        }
        metrics
    }

    /// Fetches and parses `url`; `None` when it does not answer.
    pub fn fetch(agent: &ureq::Agent, url: &str) -> Option<Self> {
        let text = agent.get(url).call().ok()?.into_string().ok()?;
        Some(Self::parse(&text))
    }
}

/// What changed in `/metrics` over the window.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MetricsDelta {
    /// Mixer ticks run (all mixer threads).
    pub ticks: f64,
    /// Mean tick, milliseconds.
    pub tick_mean_ms: Option<f64>,
    /// Median tick (upper bound of its histogram bucket), milliseconds.
    pub tick_p50_ms: Option<f64>,
    /// 99th percentile tick (upper bound of its bucket), milliseconds.
    pub tick_p99_ms: Option<f64>,
    /// Ticks that started more than a whole tick late.
    pub overruns: f64,
    /// Datagrams the server dropped, by reason.
    pub dropped: BTreeMap<String, f64>,
    /// Participants at the end of the window.
    pub participants: f64,
}

impl MetricsDelta {
    /// `after` minus `before`.
    pub fn between(before: &Metrics, after: &Metrics) -> Self {
        let ticks = after.ticks - before.ticks;
        let buckets: Vec<(f64, f64)> = after
            .tick_buckets
            .iter()
            .map(|&(bound, count)| {
                let earlier = before
                    .tick_buckets
                    .iter()
                    .find(|(b, _)| *b == bound)
                    .map_or(0.0, |(_, c)| *c);
                (bound, count - earlier)
            })
            .collect();
        let quantile = |q: f64| {
            let wanted = q * ticks;
            buckets
                .iter()
                .find(|(_, count)| *count >= wanted && ticks > 0.0)
                .map(|(bound, _)| bound * 1000.0)
        };
        let dropped = after
            .dropped
            .iter()
            .map(|(reason, count)| {
                let earlier = before.dropped.get(reason).copied().unwrap_or(0.0);
                (reason.clone(), count - earlier)
            })
            .collect();
        Self {
            ticks,
            tick_mean_ms: (ticks > 0.0)
                .then(|| 1000.0 * (after.tick_seconds - before.tick_seconds) / ticks),
            tick_p50_ms: quantile(0.5),
            tick_p99_ms: quantile(0.99),
            overruns: after.overruns - before.overruns,
            dropped,
            participants: after.participants,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_fields_after_the_command_name() {
        let stat = "4242 (tutti (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0";
        assert_eq!(parse_stat_cpu(stat, 100.0), Some(3.0));
        assert!(own_cpu_seconds().is_some());
        assert!(load_average().is_some());
    }

    #[test]
    fn metrics_deltas_give_tick_quantiles_and_overruns() {
        let before = Metrics::parse(
            "tutti_tick_duration_seconds_bucket{le=\"0.001\"} 10\n\
             tutti_tick_duration_seconds_bucket{le=\"0.002\"} 10\n\
             tutti_tick_duration_seconds_count 10\ntutti_tick_duration_seconds_sum 0.005\n\
             tutti_tick_overruns_total 1\ntutti_rtp_dropped_total{reason=\"overflow\"} 2\n",
        );
        let after = Metrics::parse(
            "# HELP x\ntutti_tick_duration_seconds_bucket{le=\"0.001\"} 108\n\
             tutti_tick_duration_seconds_bucket{le=\"0.002\"} 110\n\
             tutti_tick_duration_seconds_count 110\ntutti_tick_duration_seconds_sum 0.105\n\
             tutti_tick_overruns_total 1\ntutti_rtp_dropped_total{reason=\"overflow\"} 5\n\
             tutti_participants 25\n",
        );
        let delta = MetricsDelta::between(&before, &after);
        assert_eq!(delta.ticks, 100.0);
        assert_eq!(delta.tick_p50_ms, Some(1.0));
        assert_eq!(delta.tick_p99_ms, Some(2.0));
        assert!((delta.tick_mean_ms.unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(delta.overruns, 0.0);
        assert_eq!(delta.dropped["overflow"], 3.0);
        assert_eq!(delta.participants, 25.0);
    }
}
