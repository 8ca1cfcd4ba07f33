//! Any bytes as a datagram tutti's SIP server meets: every inspection tutti-sip makes of a
//! request (dialed number, caller id, SDP body, session-timer headers, Require, INFO digits,
//! the digest answer), then the session timer agreed from what was read. Refusals are fine;
//! a panic is not, and an agreed timer is never below RFC 4028's 90 s floor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tutti_sip::inspect::inspect_datagram;
use tutti_sip::session_timer::{negotiate, TimerLimits};

fuzz_target!(|data: &[u8]| {
    let Some(facts) = inspect_datagram(data) else {
        return;
    };
    assert!(!facts.dialed.is_empty());
    let limits = TimerLimits {
        session_expires: 1800,
        min_se: 90,
    };
    match negotiate(facts.timer, limits) {
        Ok(Some(timer)) => assert!(timer.interval >= 90, "{timer:?}"),
        Ok(None) => assert!(facts.timer.is_none()),
        Err(min_se) => assert!(min_se >= 90),
    }
});
