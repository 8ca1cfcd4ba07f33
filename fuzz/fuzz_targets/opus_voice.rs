//! Reading an Opus packet's voice flags without decoding it (what decides that a silent caller
//! is not decoded): any bytes, no panic, and the answer agrees with the packet's framing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tutti_codec::{opus_voice_activity, VoiceActivity};

fuzz_target!(|packet: &[u8]| {
    let activity = opus_voice_activity(packet);
    match packet {
        [] => assert_eq!(activity, VoiceActivity::Unknown),
        // A lone table-of-contents byte is a DTX frame.
        [_] => assert_eq!(activity, VoiceActivity::Silent),
        // CELT-only configurations carry no voice flag.
        [toc, ..] if toc >> 3 >= 16 => assert_ne!(activity, VoiceActivity::NoSpeech),
        _ => {}
    }
});
