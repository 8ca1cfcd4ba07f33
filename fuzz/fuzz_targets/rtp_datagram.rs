//! Any datagram on a media port: sorted into RTP, RTCP or a counted drop, never a panic. The
//! first byte picks the negotiated RFC 6464 extension id (none, or 1 to 15), so the one- and
//! two-byte header extension walkers see every id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tutti_rtp::packet::{find_extension, parse_datagram, Datagram};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, datagram)) = data.split_first() else {
        return;
    };
    let audio_level_id = (selector & 0x0F != 0).then_some(selector & 0x0F);
    if let Ok(Datagram::Rtp(packet)) = parse_datagram(datagram, audio_level_id) {
        // The payload is a slice of the datagram, past the 12-byte header.
        assert!(packet.payload.len() + 12 <= datagram.len());
        if let Some(level) = packet.audio_level {
            assert!(level.level <= 127);
        }
    }
    // The extension walkers on their own, with the profile from the selector's high bits.
    let profile = match selector >> 6 {
        0 => 0xBEDE,
        1 => 0x1000,
        2 => 0x100F,
        _ => u16::from_be_bytes([selector, selector]),
    };
    if let Some(value) = find_extension(profile, datagram, selector & 0x0F) {
        assert!(value.len() <= datagram.len());
    }
});
