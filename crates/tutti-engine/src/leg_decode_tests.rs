//! What a leg plays from an Opus caller who falls silent and speaks again: silent packets are
//! not decoded, and what follows the silence sounds as if every packet had been decoded.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tutti_codec::{
    AudioDecoder, AudioEncoder, CodecKind, EncoderSettings, OpusApplication, OpusDecoder,
    OpusEncoder, FRAME_SAMPLES_48K,
};
use tutti_mix::Frame;
use tutti_rtp::packet::{write_rtp, OutgoingRtp};
use tutti_rtp::rtcp::{NtpClock, RtcpSession};
use tutti_rtp::sdp::{answer_offer, AnswerConfig};

use super::{CallLeg, LegMedia, Silence};
use crate::inbox::{DropCounters, Inbox};

const TICK: Duration = Duration::from_millis(20);

/// A leg for an Opus caller.
fn opus_leg(now: Instant) -> CallLeg {
    let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n";
    let negotiated = answer_offer(
        offer,
        &AnswerConfig {
            address: "127.0.0.1".parse().unwrap(),
            port: 30000,
            preference: AnswerConfig::default_preference(),
            session_id: 1,
            ptime_ms: 20,
        },
    )
    .unwrap();
    let socket = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let media = LegMedia {
        negotiated,
        codec: CodecKind::Opus,
        encoding: EncoderSettings::default(),
        latching: false,
        unproven_send_window: Duration::from_secs(2),
        session_id: 1,
        session_version: 1,
        signalled_source: None,
    };
    CallLeg::new(
        crate::leg::Transport::Udp(Arc::new(socket)),
        Arc::new(Inbox::new(Arc::new(DropCounters::default()))),
        media,
        Box::new(OpusDecoder::new().unwrap()),
        tutti_codec::encoder_for(CodecKind::Opus, &EncoderSettings::default()).unwrap(),
        RtcpSession::new(7, "test", NtpClock::new(now, SystemTime::now())),
        7,
        now,
    )
}

/// 20 ms of a two-partial tone at `hz`, or silence for 0 Hz.
fn tone(hz: f32, frame: usize) -> Vec<f32> {
    (0..FRAME_SAMPLES_48K)
        .map(|i| {
            let t = (frame * FRAME_SAMPLES_48K + i) as f32 / 48_000.0;
            if hz == 0.0 {
                0.0
            } else {
                0.25 * (std::f32::consts::TAU * hz * t).sin()
                    + 0.1 * (std::f32::consts::TAU * 3.0 * hz * t).sin()
            }
        })
        .collect()
}

/// A caller's packets as a phone or browser codes them (SILK/hybrid, with voice flags): words
/// at 300 Hz, a pause, words at 500 Hz.
fn talk_pause_talk(bitrate: u32) -> Vec<Vec<u8>> {
    let mut encoder = OpusEncoder::new(&EncoderSettings {
        application: OpusApplication::Voip,
        complexity: 10,
        bitrate,
        ..EncoderSettings::default()
    })
    .unwrap();
    let script = [(300.0, 25), (0.0, 50), (500.0, 25)];
    let mut frame = 0;
    let mut packets = Vec::new();
    for (hz, frames) in script {
        for _ in 0..frames {
            let mut out = [0u8; 1500];
            let len = encoder.encode(&tone(hz, frame), &mut out).unwrap();
            packets.push(out[..len].to_vec());
            frame += 1;
        }
    }
    packets
}

/// Feeds one packet per tick, but for the `lost` ones, and collects what the leg plays each
/// tick (silence as zeros).
fn play(leg: &mut CallLeg, packets: &[Vec<u8>], lost: &[usize], start: Instant) -> Vec<f32> {
    let mut heard = Vec::new();
    let mut frame = Frame::silent();
    for k in 0..packets.len() + 10 {
        let now = start + TICK * k as u32;
        if let Some(payload) = packets.get(k).filter(|_| !lost.contains(&k)) {
            let mut datagram = leg.inbox.take_free().unwrap();
            let header = OutgoingRtp {
                payload_type: 111,
                sequence: k as u16,
                timestamp: (k * FRAME_SAMPLES_48K) as u32,
                ssrc: 0x1234,
                marker: false,
            };
            datagram.len = write_rtp(&mut datagram.data, &header, payload).unwrap();
            datagram.from = "127.0.0.1:40000".parse().unwrap();
            datagram.at = now;
            datagram.pinned = false;
            leg.inbox.deliver(datagram);
        }
        leg.receive(now, |_| {});
        let got = leg.next_frame(now, &mut frame);
        if got {
            heard.extend_from_slice(&frame[..]);
        } else {
            heard.extend(std::iter::repeat_n(0.0, FRAME_SAMPLES_48K));
        }
    }
    heard
}

/// Every packet decoded in order by a decoder of its own.
fn decode_all(packets: &[Vec<u8>]) -> Vec<f32> {
    let mut decoder = OpusDecoder::new().unwrap();
    let mut out = vec![0.0; FRAME_SAMPLES_48K];
    let mut all = Vec::new();
    for packet in packets {
        let n = decoder.decode(packet, &mut out).unwrap();
        all.extend_from_slice(&out[..n]);
    }
    all
}

fn energy(samples: &[f32]) -> f32 {
    samples.iter().map(|s| s * s).sum()
}

/// Index of the first frame whose energy is above a whisper.
fn first_sound_after(samples: &[f32], from_frame: usize) -> usize {
    (from_frame..samples.len() / FRAME_SAMPLES_48K)
        .find(|&f| energy(&samples[f * FRAME_SAMPLES_48K..(f + 1) * FRAME_SAMPLES_48K]) > 1.0)
        .expect("the caller is heard")
}

#[test]
fn a_caller_who_pauses_is_not_decoded_and_resumes_as_if_every_packet_had_been() {
    // At 32 kb/s libopus codes these tones with CELT (silence flags); at 12 kb/s with SILK
    // (voice flags).
    for bitrate in [32_000, 12_000] {
        pause_and_resume(bitrate);
    }
}

fn pause_and_resume(bitrate: u32) {
    let packets = talk_pause_talk(bitrate);
    let start = Instant::now();
    let mut leg = opus_leg(start);
    // A packet lost in the pause must not bring back the decoder's last words.
    let heard = play(&mut leg, &packets, &[50], start);
    let reference = decode_all(&packets);

    // The pause is 50 packets: the first few still carry the words' tail, the next ten are
    // decoded to confirm that "no speech" is quiet, the rest are skipped.
    assert!(
        leg.counters.decode_skipped >= 30,
        "{bitrate} b/s: the pause was decoded: {} packets skipped",
        leg.counters.decode_skipped
    );
    // The leg plays with the jitter buffer's delay, which may grow by a frame or two while
    // it adapts: line the two up on the first words, and again on the second.
    let delay = first_sound_after(&heard, 0) - first_sound_after(&reference, 0);
    let frame = |samples: &[f32], f: usize| {
        samples[f * FRAME_SAMPLES_48K..(f + 1) * FRAME_SAMPLES_48K].to_vec()
    };
    // The pause is silent: nothing of the first words is replayed into it.
    for f in 35..70 {
        assert!(
            energy(&frame(&heard, f + delay)) < 0.01,
            "frame {f} of the pause is not silent"
        );
    }
    // Every frame of the second words, the first one included, matches the reference: no
    // click, no lost syllable.
    let resumed = first_sound_after(&heard, 72 + delay);
    let expected = first_sound_after(&reference, 72);
    for f in 0..20 {
        let ours = frame(&heard, resumed + f);
        let theirs = frame(&reference, expected + f);
        let error: f32 = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        let snr = 10.0 * (energy(&theirs) / error.max(1e-12)).log10();
        assert!(
            snr > 30.0,
            "{bitrate} b/s: frame {f} after the pause differs: SNR {snr:.1} dB"
        );
    }
}

#[test]
fn an_audio_level_decides_when_the_caller_sends_one() {
    use tutti_rtp::packet::AudioLevel;
    let decoder = OpusDecoder::new().unwrap();
    let packets = talk_pause_talk(12_000);
    let (words, pause) = (&packets[10], &packets[50]);
    let level = |level| {
        Some(AudioLevel {
            level,
            voice: false,
        })
    };
    let silence = |payload, level| super::silence_of(&decoder, payload, level);
    assert_eq!(silence(words, level(90)), Silence::Certain);
    assert_eq!(silence(pause, level(30)), Silence::No);
    assert_eq!(silence(pause, None), Silence::Likely);
    assert_eq!(silence(words, None), Silence::No);
    assert_eq!(silence(&[0x48], None), Silence::Certain, "a DTX frame");
}

#[test]
fn a_steady_tone_the_senders_vad_calls_no_speech_is_still_decoded() {
    // SILK's VAD stops calling a steady tone speech after a second; it is loud all along.
    let mut encoder = OpusEncoder::new(&EncoderSettings {
        application: OpusApplication::Voip,
        complexity: 10,
        bitrate: 12_000,
        ..EncoderSettings::default()
    })
    .unwrap();
    let packets: Vec<Vec<u8>> = (0..200)
        .map(|f| {
            let mut out = [0u8; 1500];
            let len = encoder.encode(&tone(500.0, f), &mut out).unwrap();
            out[..len].to_vec()
        })
        .collect();
    let no_speech = packets
        .iter()
        .filter(|p| tutti_codec::opus_voice_activity(p) == tutti_codec::VoiceActivity::NoSpeech)
        .count();
    assert!(
        no_speech > 100,
        "the tone is not speech to the VAD: {no_speech} of 200"
    );
    let start = Instant::now();
    let mut leg = opus_leg(start);
    let heard = play(&mut leg, &packets, &[], start);
    assert_eq!(leg.counters.decode_skipped, 0);
    let last_second =
        &heard[heard.len() - 60 * FRAME_SAMPLES_48K..heard.len() - 10 * FRAME_SAMPLES_48K];
    let reference = decode_all(&packets);
    let reference_tail = &reference[reference.len() - 50 * FRAME_SAMPLES_48K..];
    assert!(energy(last_second) > 0.9 * energy(reference_tail));
}
