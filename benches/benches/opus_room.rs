//! One mixer thread's work for a room of 25 Opus participants, 3 talking and 22 sending
//! Opus-coded silence (the setup of the Janus AudioBridge CPU figure in the README). Reports the whole tick and its parts: decoding 25 packets, mixing,
//! encoding each distinct mix once (3 talkers' own mixes + the shared one) and packetizing 25
//! RTP packets. Socket sends are not included.
//!
//! Two settings of tutti's mix encoders: the default (`celt_mix`: wideband CELT, 96 kb/s,
//! complexity 0) and what a listener asking for in-band FEC gets (`voip_mix`: wideband SILK
//! with FEC, 64 kb/s, complexity 6), both from [`EncoderSettings::toward_listener`]. Callers'
//! packets are VoIP-mode Opus at complexity 4 either way.
//!
//! CPU per participant per tick = `…/tick_full` ÷ 25.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tutti_codec::{
    AudioDecoder, AudioEncoder, EncoderSettings, OpusApplication, OpusBandwidth, OpusDecoder,
    OpusEncoder, MAX_PACKET_SAMPLES,
};
use tutti_mix::{ParticipantId, ParticipantSettings, Room, RoomConfig};
use tutti_rtp::packet::{write_rtp, OutgoingRtp};

const PARTICIPANTS: usize = 25;
const TALKERS: usize = 3;
const FRAMES: usize = 50;

/// What callers send: VoIP-mode Opus (SILK/hybrid), as browsers and phones do.
fn caller_settings() -> EncoderSettings {
    EncoderSettings {
        application: OpusApplication::Voip,
        complexity: 4,
        bitrate: 32_000,
        inband_fec: true,
        dtx: false,
        expected_loss_percent: 5,
        max_bandwidth: OpusBandwidth::Fullband,
    }
}

/// What tutti encodes mixes with: the defaults, toward a listener with or without FEC.
fn mix_settings(listener_fec: bool) -> EncoderSettings {
    EncoderSettings::default().toward_listener(None, listener_fec)
}

/// 50 consecutive packets per participant: a tone for talkers, silence for the others.
fn packets() -> Vec<Vec<Vec<u8>>> {
    (0..PARTICIPANTS)
        .map(|p| {
            let mut encoder = OpusEncoder::new(&caller_settings()).expect("encoder");
            (0..FRAMES)
                .map(|f| {
                    let frame: Vec<f32> = (0..960)
                        .map(|i| {
                            if p < TALKERS {
                                let t = (f * 960 + i) as f32 / 48_000.0;
                                0.2 * (2.0 * std::f32::consts::PI * (300.0 + 100.0 * p as f32) * t)
                                    .sin()
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    let mut out = [0u8; 1500];
                    let len = encoder.encode(&frame, &mut out).expect("encode");
                    out[..len].to_vec()
                })
                .collect()
        })
        .collect()
}

struct Bench {
    packets: Vec<Vec<Vec<u8>>>,
    decoders: Vec<OpusDecoder>,
    room: Room,
    ids: Vec<ParticipantId>,
    encoders: Vec<OpusEncoder>,
    decoded: Vec<f32>,
    payload: [u8; 1500],
    rtp: [u8; 1500],
    frame: usize,
    sequence: u16,
}

impl Bench {
    fn new(listener_fec: bool) -> Self {
        let mut room = Room::new(RoomConfig::default());
        let ids = (0..PARTICIPANTS)
            .map(|_| {
                room.add_participant(ParticipantSettings::default())
                    .expect("room")
            })
            .collect();
        let mut bench = Self {
            packets: packets(),
            decoders: (0..PARTICIPANTS)
                .map(|_| OpusDecoder::new().expect("decoder"))
                .collect(),
            room,
            ids,
            // The shared mix's encoder and one per talker's own mix.
            encoders: (0..=TALKERS)
                .map(|_| OpusEncoder::new(&mix_settings(listener_fec)).expect("encoder"))
                .collect(),
            decoded: vec![0.0; MAX_PACKET_SAMPLES],
            payload: [0; 1500],
            rtp: [0; 1500],
            frame: 0,
            sequence: 0,
        };
        for _ in 0..10 {
            bench.tick();
        }
        bench
    }

    fn decode(&mut self) {
        let frame = self.frame % FRAMES;
        for p in 0..PARTICIPANTS {
            let n = self.decoders[p]
                .decode(&self.packets[p][frame], &mut self.decoded)
                .unwrap_or(0);
            if n >= 960 {
                if let Ok(input) = self.room.input_mut(self.ids[p]) {
                    input.copy_from_slice(&self.decoded[..960]);
                }
            }
        }
        self.frame += 1;
    }

    fn mix(&mut self) -> usize {
        self.room.tick().group_count()
    }

    fn encode_and_packetize(&mut self) {
        let output = self.room.last_output();
        for (encoder, group) in output.groups().enumerate() {
            let len = self.encoders[encoder.min(TALKERS)]
                .encode(&group.frame[..], &mut self.payload)
                .unwrap_or(0);
            for _ in group.listeners {
                self.sequence = self.sequence.wrapping_add(1);
                let header = OutgoingRtp {
                    payload_type: 111,
                    sequence: self.sequence,
                    timestamp: 0,
                    ssrc: 1,
                    marker: false,
                };
                black_box(write_rtp(&mut self.rtp, &header, &self.payload[..len]));
            }
        }
    }

    fn tick(&mut self) {
        self.decode();
        self.mix();
        self.encode_and_packetize();
    }
}

fn opus_room(c: &mut Criterion) {
    let mut group = c.benchmark_group("opus_room_25");
    for (label, listener_fec) in [("celt_mix", false), ("voip_mix", true)] {
        let mut bench = Bench::new(listener_fec);
        assert_eq!(
            bench.room.last_output().group_count(),
            TALKERS + 1,
            "3 own mixes + 1 shared"
        );
        group.bench_function(format!("{label}/tick_full"), |b| b.iter(|| bench.tick()));
        let mut bench = Bench::new(listener_fec);
        group.bench_function(format!("{label}/encode_4_and_packetize_25"), |b| {
            b.iter(|| bench.encode_and_packetize())
        });
    }
    let mut bench = Bench::new(false);
    group.bench_function("decode_25", |b| b.iter(|| bench.decode()));
    let mut bench = Bench::new(false);
    group.bench_function("mix", |b| {
        b.iter(|| {
            for id in &bench.ids {
                let _ = bench.room.input_mut(*id);
            }
            black_box(bench.mix())
        })
    });
    group.finish();
}

criterion_group!(benches, opus_room);
criterion_main!(benches);
