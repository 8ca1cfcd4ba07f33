//! Any RTCP compound packet into a call leg's RTCP session, which then writes its own report:
//! malformed input is counted, statistics stay in range, never a panic.
#![no_main]

use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use tutti_rtp::rtcp::{NtpClock, RtcpSession};

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    // Our SSRC is 1, so report blocks about SSRC 1 reach the RTT and loss code.
    let mut session = RtcpSession::new(1, "tutti@fuzz", NtpClock::new(start, SystemTime::now()));
    session.on_rtp_received(2, 100);
    session.on_rtp_sent(160);
    let malformed_before = session.stats().malformed;
    let handled = session.handle(data, start + Duration::from_millis(20));
    let stats = session.stats();
    assert_eq!(handled.is_err(), stats.malformed > malformed_before);
    if let Some(fraction) = stats.remote_fraction_lost {
        assert!((0.0..1.0).contains(&fraction));
    }
    let mut out = [0u8; 1500];
    assert!(session
        .write_report(
            start + Duration::from_secs(1),
            8000,
            Duration::ZERO,
            8000,
            &mut out
        )
        .is_some());
});
