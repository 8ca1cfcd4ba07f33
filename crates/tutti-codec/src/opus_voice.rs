//! Voice activity read from an Opus packet without decoding it.
//!
//! A SILK or hybrid Opus frame begins with one voice-activity flag per SILK frame, written by
//! the sender's encoder (RFC 6716 §4.2.3). Each is coded with probability ½ at the very start
//! of the range coder, so it is a plain bit: the top bits of the frame's first byte (the first
//! decoded symbol of a fresh range decoder is the top bit of its first byte). libopus clears
//! these flags for frames its VAD finds to hold no speech, the same test that drives its DTX;
//! that is not the same as quiet: a steady tone or hum is "no speech" after a second. A packet
//! of one byte is a DTX frame: nothing coded. A CELT-only frame has no voice flag, but its
//! first symbol (probability 2⁻¹⁵) says whether the frame is digital silence (RFC 6716 §4.3);
//! any other CELT frame says nothing.

/// What a packet says about the sender's voice, from the strongest statement down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum VoiceActivity {
    /// Nothing is coded (DTX) or every frame is digital silence: nothing to hear.
    Silent,
    /// The sender's VAD found no speech in any frame: quiet, or a sound that is not speech
    /// (a steady tone, music on hold). Only decoding tells which.
    NoSpeech,
    /// The packet does not say (CELT-only, or a framing this reader does not parse).
    Unknown,
    /// At least one frame holds speech.
    Voice,
}

/// Reads the voice-activity flags of an Opus packet. Never panics, whatever the bytes.
pub fn opus_voice_activity(packet: &[u8]) -> VoiceActivity {
    let Some((&toc, rest)) = packet.split_first() else {
        return VoiceActivity::Unknown;
    };
    if rest.is_empty() {
        return VoiceActivity::Silent;
    }
    let config = toc >> 3;
    let silk_frames = match config {
        // SILK-only: 10, 20, 40, 60 ms frames hold 1, 1, 2, 3 SILK frames.
        0..=11 => [1, 1, 2, 3][usize::from(config % 4)],
        // Hybrid: 10 or 20 ms, one SILK frame.
        12..=15 => 1,
        // CELT-only.
        _ => 0,
    };
    let stereo = toc & 0x04 != 0;
    // The strongest statement of any frame is the packet's.
    let mut strongest = VoiceActivity::Silent;
    let mut check = |frame: &[u8]| {
        // An empty frame is a DTX frame: nothing coded.
        let activity = match frame.first() {
            None => VoiceActivity::Silent,
            Some(_) if silk_frames == 0 && celt_frame_is_silence(frame) => VoiceActivity::Silent,
            Some(_) if silk_frames == 0 => VoiceActivity::Unknown,
            Some(&first) if frame_has_voice(first, silk_frames, stereo) => VoiceActivity::Voice,
            Some(_) => VoiceActivity::NoSpeech,
        };
        strongest = strongest.max(activity);
    };
    match toc & 0x03 {
        0 => check(rest),
        1 => {
            if rest.len() % 2 != 0 {
                return VoiceActivity::Unknown;
            }
            let (a, b) = rest.split_at(rest.len() / 2);
            check(a);
            check(b);
        }
        2 => {
            let Some((first_len, header)) = frame_length(rest) else {
                return VoiceActivity::Unknown;
            };
            let Some(frames) = rest.get(header..) else {
                return VoiceActivity::Unknown;
            };
            if first_len > frames.len() {
                return VoiceActivity::Unknown;
            }
            let (a, b) = frames.split_at(first_len);
            check(a);
            check(b);
        }
        _ => return VoiceActivity::Unknown,
    }
    strongest
}

/// The silence flag of a CELT-only frame: the first symbol of its range coder, decoded as
/// RFC 6716 §4.1 does (initialise, normalise to 2³¹, then `val < rng >> 15`).
fn celt_frame_is_silence(frame: &[u8]) -> bool {
    let byte = |i: usize| u32::from(frame.get(i).copied().unwrap_or(0));
    let mut rng: u32 = 128;
    let mut val: u32 = 127 - (byte(0) >> 1);
    let mut next = 1;
    while rng <= 1 << 23 {
        rng <<= 8;
        let symbol = ((byte(next - 1) << 7) | (byte(next) >> 1)) & 0xFF;
        val = ((val << 8) + (255 - symbol)) & 0x7FFF_FFFF;
        next += 1;
    }
    val < rng >> 15
}

/// Whether the voice flags at the start of a frame whose first byte is `first` say voice:
/// `silk_frames` mid-channel flags, then (stereo) the mid LBRR flag and as many side flags.
fn frame_has_voice(first: u8, silk_frames: u32, stereo: bool) -> bool {
    let flags = |from: u32, count: u32| (first << from) >> (8 - count) != 0;
    flags(0, silk_frames) || (stereo && flags(silk_frames + 1, silk_frames))
}

/// A code-2 packet's first frame length (RFC 6716 §3.2.1) and how many bytes it took.
fn frame_length(bytes: &[u8]) -> Option<(usize, usize)> {
    match *bytes {
        [first, ..] if first < 252 => Some((usize::from(first), 1)),
        [first, second, ..] => Some((usize::from(second) * 4 + usize::from(first), 2)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AudioEncoder, EncoderSettings, OpusApplication, OpusEncoder};

    fn encode(
        application: OpusApplication,
        frames: impl Iterator<Item = Vec<f32>>,
    ) -> Vec<Vec<u8>> {
        let mut encoder = OpusEncoder::new(&EncoderSettings {
            application,
            ..EncoderSettings::default()
        })
        .unwrap();
        frames
            .map(|frame| {
                let mut out = [0u8; 1500];
                let len = encoder.encode(&frame, &mut out).unwrap();
                out[..len].to_vec()
            })
            .collect()
    }

    fn tone(frame: usize) -> Vec<f32> {
        (0..960)
            .map(|i| {
                let t = (frame * 960 + i) as f32 / 48_000.0;
                0.3 * (2.0 * std::f32::consts::PI * 220.0 * t).sin()
                    + 0.1 * (2.0 * std::f32::consts::PI * 660.0 * t).sin()
            })
            .collect()
    }

    #[test]
    fn silk_silence_is_no_speech_and_speech_is_voice() {
        let silence = encode(OpusApplication::Voip, (0..30).map(|_| vec![0.0; 960]));
        for packet in &silence[5..] {
            assert_eq!(opus_voice_activity(packet), VoiceActivity::NoSpeech);
        }
        let voice = encode(OpusApplication::Voip, (0..30).map(tone));
        let voiced = voice
            .iter()
            .filter(|p| opus_voice_activity(p) == VoiceActivity::Voice)
            .count();
        assert!(
            voiced >= 28,
            "only {voiced} of 30 tone packets flagged voice"
        );
    }

    #[test]
    fn dtx_frames_and_celt_digital_silence_are_silent_other_celt_says_nothing() {
        assert_eq!(opus_voice_activity(&[0x78]), VoiceActivity::Silent);
        assert_eq!(opus_voice_activity(&[]), VoiceActivity::Unknown);
        let celt = encode(OpusApplication::Audio, (0..5).map(tone));
        for packet in &celt {
            assert!(packet[0] >> 3 >= 16, "CELT-only configuration expected");
            assert_eq!(opus_voice_activity(packet), VoiceActivity::Unknown);
        }
        let quiet = encode(OpusApplication::Audio, (0..10).map(|_| vec![0.0; 960]));
        for packet in &quiet[2..] {
            assert!(packet[0] >> 3 >= 16, "CELT-only configuration expected");
            assert_eq!(opus_voice_activity(packet), VoiceActivity::Silent);
        }
        // Very quiet noise is coded, not flagged as silence.
        let mut seed = 3u32;
        let hiss = encode(
            OpusApplication::Audio,
            (0..10).map(|_| {
                (0..960)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        ((seed >> 8) as f32 / 16_777_216.0 - 0.5) * 0.002
                    })
                    .collect()
            }),
        );
        for packet in &hiss[2..] {
            assert_eq!(opus_voice_activity(packet), VoiceActivity::Unknown);
        }
    }

    #[test]
    fn flags_of_every_frame_and_channel_are_read() {
        // SILK 60 ms (config 3): three flags in the top three bits.
        let toc = 3 << 3;
        assert_eq!(
            opus_voice_activity(&[toc, 0b0000_1111]),
            VoiceActivity::NoSpeech
        );
        assert_eq!(
            opus_voice_activity(&[toc, 0b0010_0000]),
            VoiceActivity::Voice
        );
        // Stereo SILK 20 ms: mid flag, mid LBRR, side flag.
        let stereo = (1 << 3) | 0x04;
        assert_eq!(
            opus_voice_activity(&[stereo, 0b0100_0000]),
            VoiceActivity::NoSpeech
        );
        assert_eq!(
            opus_voice_activity(&[stereo, 0b0010_0000]),
            VoiceActivity::Voice
        );
        // Two equal frames (code 1), voice in the second.
        let two = (1 << 3) | 1;
        assert_eq!(
            opus_voice_activity(&[two, 0x00, 0x80]),
            VoiceActivity::Voice
        );
        assert_eq!(opus_voice_activity(&[two, 0x00]), VoiceActivity::Unknown);
        // Two frames of their own lengths (code 2): 1 byte, then the rest.
        let vbr = (1 << 3) | 2;
        assert_eq!(
            opus_voice_activity(&[vbr, 1, 0x00, 0x00]),
            VoiceActivity::NoSpeech
        );
        assert_eq!(
            opus_voice_activity(&[vbr, 1, 0x00, 0x80]),
            VoiceActivity::Voice
        );
        assert_eq!(opus_voice_activity(&[vbr, 9, 0x00]), VoiceActivity::Unknown);
        // Arbitrary frame counts (code 3) are not parsed.
        assert_eq!(
            opus_voice_activity(&[(1 << 3) | 3, 0x02, 0, 0]),
            VoiceActivity::Unknown
        );
    }

    #[test]
    fn any_bytes_are_read_without_panicking() {
        let mut seed = 7u32;
        for len in 0..64 {
            for _ in 0..200 {
                let packet: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (seed >> 24) as u8
                    })
                    .collect();
                let _ = opus_voice_activity(&packet);
            }
        }
    }
}
