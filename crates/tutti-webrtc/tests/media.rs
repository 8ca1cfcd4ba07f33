//! Audio both ways between a browser (WebRTC, Opus) and a plain RTP caller (G.711) in one room.

use std::time::Duration;

use str0m::media::Direction;
use tutti_mix::ParticipantSettings;

mod common;

use common::engine::{join, Caller};
use common::{connect, setup, talk, Browser};

#[test]
fn a_browser_and_an_rtp_caller_hear_each_other() {
    let (engine, endpoint, room) = setup(36_000..=36_019);
    let mut caller = Caller::new(880.0);
    join(&engine, room, &mut caller, ParticipantSettings::default());
    let mut browser = Browser::new(Direction::SendRecv, 440.0);
    connect(&endpoint, room, &mut browser);

    talk(&mut [&mut browser], &mut [&mut caller], 2.5);

    let heard_by_caller = (caller.level(440.0, 1.0), caller.level(880.0, 1.0));
    assert!(
        heard_by_caller.0 > 0.05 && heard_by_caller.0 > 5.0 * heard_by_caller.1,
        "the RTP caller hears the browser's 440 Hz (440, 880 Hz): {heard_by_caller:?}"
    );
    let heard_by_browser = (browser.level(880.0, 1.0), browser.level(440.0, 1.0));
    assert!(
        heard_by_browser.0 > 0.05 && heard_by_browser.0 > 5.0 * heard_by_browser.1,
        "the browser hears the caller's 880 Hz (880, 440 Hz): {heard_by_browser:?}"
    );
    eprintln!("caller hears {heard_by_caller:?}, browser hears {heard_by_browser:?}");
    let metrics = endpoint.metrics();
    assert_eq!(metrics.peers, 1);
    assert_eq!(metrics.connected, 1);
    assert!(metrics.rtp_in > 50 && metrics.rtp_out > 50, "{metrics:?}");
    browser.wait("a steady connection", Duration::from_millis(10), |b| {
        !b.closed
    });
}

#[test]
fn the_browsers_audio_levels_reach_the_engine() {
    // A tone marked as silence (-127 dBov) in the RFC 6464 extension, at the id the browser
    // chose (10): the engine believes the level and does not decode it, so nobody hears it.
    let (engine, endpoint, room) = setup(36_200..=36_219);
    let mut caller = Caller::new(0.0);
    join(&engine, room, &mut caller, ParticipantSettings::default());
    let mut browser = Browser::new(Direction::SendRecv, 440.0);
    browser.audio_level = -127;
    connect(&endpoint, room, &mut browser);

    talk(&mut [&mut browser], &mut [&mut caller], 1.5);

    assert!(endpoint.metrics().rtp_in > 50, "{:?}", endpoint.metrics());
    let heard = caller.level(440.0, 1.0);
    assert!(heard < 0.01, "a tone marked silent was heard: {heard}");
}
