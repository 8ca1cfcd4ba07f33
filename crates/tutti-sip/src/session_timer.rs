//! Session timers (RFC 4028): the interval agreed with a caller, the headers that say so, and
//! when a session that nobody refreshed is over. Asterisk and FreeSWITCH ask for them by
//! default; without them a call whose far end vanished would hold its place until the media
//! timeout noticed.

use std::time::Duration;

use rsipstack::sip::Header;

use crate::inspect::{Refresher, TimerRequest};

/// The session timer of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionTimer {
    /// Seconds between refreshes at most.
    pub interval: u32,
    /// Who refreshes.
    pub refresher: Refresher,
    /// Whether the caller said it supports timers (then the answer requires them).
    pub caller_supports: bool,
}

/// The server's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerLimits {
    /// The interval tutti asks for.
    pub session_expires: u32,
    /// The shortest it accepts.
    pub min_se: u32,
}

/// RFC 4028's floor for `Min-SE`.
const RFC_MIN_SE: u32 = 90;

/// Agrees on a session timer for an INVITE or a refresh. `Err(min_se)` asks the caller to
/// retry with at least `min_se` (422 Session Interval Too Small).
pub fn negotiate(
    request: Option<TimerRequest>,
    limits: TimerLimits,
) -> Result<Option<SessionTimer>, u32> {
    let Some(request) = request else {
        return Ok(None);
    };
    let min_se = limits.min_se.max(RFC_MIN_SE);
    let floor = request.min_se.unwrap_or(0).max(min_se);
    if let Some(asked) = request.session_expires {
        if asked < min_se {
            return Err(min_se);
        }
    }
    let interval = request
        .session_expires
        .unwrap_or(limits.session_expires)
        .min(limits.session_expires.max(floor))
        .max(floor);
    // A caller that does not support timers cannot refresh; tutti does (RFC 4028 §9).
    let refresher = match (request.supported, request.refresher) {
        (false, _) => Refresher::Uas,
        (true, Some(refresher)) => refresher,
        (true, None) => Refresher::Uac,
    };
    Ok(Some(SessionTimer {
        interval,
        refresher,
        caller_supports: request.supported,
    }))
}

impl SessionTimer {
    /// The headers of a 2xx that agrees on this timer.
    pub fn headers(&self) -> Vec<Header> {
        let refresher = match self.refresher {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        };
        let mut headers = vec![Header::Other(
            "Session-Expires".into(),
            format!("{};refresher={refresher}", self.interval),
        )];
        if self.caller_supports {
            headers.push(Header::Other("Require".into(), "timer".into()));
        }
        headers
    }

    /// When tutti sends its refresh (it is the refresher): half the interval.
    pub fn refresh_after(&self) -> Option<Duration> {
        (self.refresher == Refresher::Uas)
            .then(|| Duration::from_secs(u64::from(self.interval) / 2))
    }

    /// How long after the last refresh the session is over when the caller refreshes and
    /// stops doing so: the interval minus the smaller of 32 s and a third of it (§10).
    pub fn expires_after(&self) -> Option<Duration> {
        (self.refresher == Refresher::Uac).then(|| {
            let interval = u64::from(self.interval);
            Duration::from_secs(interval - (interval / 3).min(32))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: TimerLimits = TimerLimits {
        session_expires: 1800,
        min_se: 90,
    };

    fn asked(session_expires: Option<u32>, supported: bool) -> Option<TimerRequest> {
        Some(TimerRequest {
            session_expires,
            min_se: None,
            refresher: None,
            supported,
        })
    }

    #[test]
    fn the_callers_interval_is_kept_and_it_refreshes() {
        let timer = negotiate(asked(Some(600), true), LIMITS).unwrap().unwrap();
        assert_eq!(timer.interval, 600);
        assert_eq!(timer.refresher, Refresher::Uac);
        assert_eq!(timer.expires_after(), Some(Duration::from_secs(568)));
        assert_eq!(timer.refresh_after(), None);
        let headers: Vec<String> = timer.headers().iter().map(ToString::to_string).collect();
        assert_eq!(
            headers,
            ["Session-Expires: 600;refresher=uac", "Require: timer"]
        );
    }

    #[test]
    fn too_short_an_interval_is_refused_with_the_minimum() {
        assert_eq!(negotiate(asked(Some(30), true), LIMITS), Err(90));
    }

    #[test]
    fn long_intervals_are_shortened_and_callers_without_timer_support_are_refreshed() {
        let timer = negotiate(asked(Some(7200), false), LIMITS)
            .unwrap()
            .unwrap();
        assert_eq!(timer.interval, 1800);
        assert_eq!(timer.refresher, Refresher::Uas);
        assert_eq!(timer.refresh_after(), Some(Duration::from_secs(900)));
        assert_eq!(timer.headers().len(), 1);
        assert_eq!(negotiate(None, LIMITS), Ok(None));
        let only_supported = negotiate(asked(None, true), LIMITS).unwrap().unwrap();
        assert_eq!(only_supported.interval, 1800);
    }
}
