//! Every codec at 48 kHz: tones survive a round trip at the right pitch and level, concealment
//! and FEC recovery behave, bad input is refused without panicking.

use tutti_codec::{
    decoder_for, encoder_for, AudioDecoder, CodecError, CodecKind, EncoderSettings,
    OpusApplication, OpusBandwidth, OpusDecoder, OpusEncoder, FRAME_SAMPLES_48K,
    MAX_PACKET_SAMPLES,
};

fn tone_frame(hz: f64, amplitude: f64, frame: usize) -> Vec<f32> {
    (0..FRAME_SAMPLES_48K)
        .map(|i| {
            let t = (frame * FRAME_SAMPLES_48K + i) as f64 / 48_000.0;
            (amplitude * (2.0 * std::f64::consts::PI * hz * t).sin()) as f32
        })
        .collect()
}

fn amplitude_at(samples: &[f32], hz: f64) -> f64 {
    tutti_e2e::amplitude_at(samples, 48_000, hz)
}

/// Encodes `frames` frames of a tone and decodes them; returns the decoded audio.
fn round_trip(kind: CodecKind, hz: f64, frames: usize) -> Vec<f32> {
    let mut encoder = encoder_for(kind, &EncoderSettings::default()).unwrap();
    let mut decoder = decoder_for(kind).unwrap();
    let mut packet = [0u8; 1500];
    let mut decoded = vec![0.0f32; MAX_PACKET_SAMPLES];
    let mut out = Vec::new();
    for frame in 0..frames {
        let len = encoder
            .encode(&tone_frame(hz, 0.4, frame), &mut packet)
            .unwrap();
        let n = decoder.decode(&packet[..len], &mut decoded).unwrap();
        out.extend_from_slice(&decoded[..n]);
    }
    out
}

#[test]
fn tones_survive_every_codec() {
    for (kind, hz) in [
        (CodecKind::Opus, 1000.0),
        (CodecKind::Opus, 6000.0),
        (CodecKind::G722, 1000.0),
        (CodecKind::G722, 6000.0),
        (CodecKind::Pcmu, 1000.0),
        (CodecKind::Pcma, 1000.0),
    ] {
        let audio = round_trip(kind, hz, 50);
        assert_eq!(
            audio.len(),
            50 * FRAME_SAMPLES_48K,
            "{kind:?}: 20 ms in, 20 ms out"
        );
        let tail = &audio[10 * FRAME_SAMPLES_48K..];
        let level = amplitude_at(tail, hz);
        assert!(
            (level - 0.4).abs() < 0.06,
            "{kind:?} {hz} Hz came back at {level}"
        );
        let elsewhere = amplitude_at(tail, hz * 0.77);
        assert!(
            elsewhere < 0.02,
            "{kind:?}: energy away from {hz} Hz: {elsewhere}"
        );
    }
}

#[test]
fn narrowband_codecs_cut_above_4_khz() {
    let audio = round_trip(CodecKind::Pcmu, 6000.0, 20);
    assert!(amplitude_at(&audio[5 * 960..], 6000.0) < 0.02);
}

#[test]
fn pcmu_packets_of_any_ptime_decode_to_48_khz() {
    let mut decoder = decoder_for(CodecKind::Pcmu).unwrap();
    let mut out = vec![0.0; MAX_PACKET_SAMPLES];
    for (bytes, samples) in [(80, 480), (160, 960), (240, 1440), (480, 2880)] {
        assert_eq!(
            decoder.decode(&vec![0xFF; bytes], &mut out).unwrap(),
            samples
        );
    }
    assert!(matches!(
        decoder.decode(&[0xFF; 2000], &mut out),
        Err(CodecError::PayloadTooLong { .. })
    ));
}

#[test]
fn opus_decodes_any_configuration_to_48_khz_mono() {
    for (rate, channels) in [
        (8_000, opus::Channels::Mono),
        (16_000, opus::Channels::Mono),
        (48_000, opus::Channels::Stereo),
    ] {
        let mut encoder = opus::Encoder::new(rate, channels, opus::Application::Voip).unwrap();
        let per_frame = rate as usize / 50 * channels as usize;
        let input: Vec<f32> = (0..per_frame)
            .map(|i| {
                (0.3 * (2.0 * std::f64::consts::PI * 500.0 * (i / channels as usize) as f64
                    / f64::from(rate))
                .sin()) as f32
            })
            .collect();
        let mut packet = [0u8; 1500];
        let mut decoder = OpusDecoder::new().unwrap();
        let mut out = vec![0.0; MAX_PACKET_SAMPLES];
        for _ in 0..5 {
            let len = encoder.encode_float(&input, &mut packet).unwrap();
            assert_eq!(
                decoder.decode(&packet[..len], &mut out).unwrap(),
                960,
                "{rate} Hz {channels:?}"
            );
        }
    }
}

#[test]
fn opus_recovers_a_lost_frame_from_fec_better_than_concealment() {
    let settings = EncoderSettings {
        application: OpusApplication::Voip,
        expected_loss_percent: 20,
        bitrate: 24_000,
        ..Default::default()
    };
    let mut encoder = OpusEncoder::new(&settings).unwrap();
    let packets: Vec<Vec<u8>> = (0..30)
        .map(|frame| {
            // A tone that changes pitch every frame, so a repeated frame is wrong.
            let hz = 300.0 + 40.0 * frame as f64;
            let mut packet = [0u8; 1500];
            let len = tutti_codec::AudioEncoder::encode(
                &mut encoder,
                &tone_frame(hz, 0.4, frame),
                &mut packet,
            )
            .unwrap();
            packet[..len].to_vec()
        })
        .collect();
    let lost = 20;
    let expected_hz = 300.0 + 40.0 * lost as f64;

    let mut with_fec = OpusDecoder::new().unwrap();
    let mut with_plc = OpusDecoder::new().unwrap();
    let mut out = vec![0.0; MAX_PACKET_SAMPLES];
    for packet in &packets[..lost] {
        with_fec.decode(packet, &mut out).unwrap();
        with_plc.decode(packet, &mut out).unwrap();
    }
    let mut recovered = vec![0.0; 960];
    let n = with_fec
        .recover(&packets[lost + 1], &mut recovered)
        .unwrap();
    assert_eq!(n, Some(960), "the next packet carries FEC");
    let mut concealed = vec![0.0; 960];
    assert_eq!(with_plc.conceal(&mut concealed).unwrap(), 960);

    let fec_level = amplitude_at(&recovered, expected_hz);
    let plc_level = amplitude_at(&concealed, expected_hz);
    assert!(fec_level > 0.2, "FEC recovered {fec_level}");
    assert!(
        fec_level > 2.0 * plc_level,
        "FEC {fec_level} vs PLC {plc_level}"
    );
}

#[test]
fn concealment_fades_out_over_repeated_losses() {
    for kind in [CodecKind::Opus, CodecKind::Pcmu, CodecKind::G722] {
        let mut encoder = encoder_for(kind, &EncoderSettings::default()).unwrap();
        let mut decoder = decoder_for(kind).unwrap();
        let mut packet = [0u8; 1500];
        let mut out = vec![0.0; MAX_PACKET_SAMPLES];
        for frame in 0..20 {
            let len = encoder
                .encode(&tone_frame(500.0, 0.4, frame), &mut packet)
                .unwrap();
            decoder.decode(&packet[..len], &mut out).unwrap();
        }
        let mut levels = Vec::new();
        for _ in 0..10 {
            let mut concealed = vec![0.0; 960];
            assert_eq!(decoder.conceal(&mut concealed).unwrap(), 960);
            levels.push(concealed.iter().fold(0.0f32, |m, s| m.max(s.abs())));
        }
        assert!(
            levels[0] > 0.05,
            "{kind:?}: the first concealed frame continues the sound"
        );
        assert!(
            levels[9] < 0.5 * levels[0],
            "{kind:?}: concealment must fade: {levels:?}"
        );
    }
}

#[test]
fn opus_dtx_sends_almost_nothing_during_silence() {
    let settings = EncoderSettings {
        application: OpusApplication::Voip,
        dtx: true,
        ..Default::default()
    };
    let mut encoder = encoder_for(CodecKind::Opus, &settings).unwrap();
    let mut packet = [0u8; 1500];
    let silence = vec![0.0f32; 960];
    let sizes: Vec<usize> = (0..50)
        .map(|_| encoder.encode(&silence, &mut packet).unwrap())
        .collect();
    // After the hangover, silence goes as 1-byte packets, with a refresh every 400 ms.
    let tiny = sizes[10..].iter().filter(|&&n| n <= 2).count();
    assert!(tiny >= 36, "{sizes:?}");
}

#[test]
fn garbage_never_panics_a_decoder() {
    let mut state = 0x1234_5678u32;
    let mut out = vec![0.0; MAX_PACKET_SAMPLES];
    for kind in [
        CodecKind::Opus,
        CodecKind::G722,
        CodecKind::Pcmu,
        CodecKind::Pcma,
    ] {
        let mut decoder = decoder_for(kind).unwrap();
        for len in 0..400 {
            let payload: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = decoder.decode(&payload, &mut out);
            let _ = decoder.recover(&payload, &mut out[..960]);
        }
    }
}

#[test]
fn settings_out_of_range_are_refused() {
    for settings in [
        EncoderSettings {
            complexity: 11,
            ..Default::default()
        },
        EncoderSettings {
            bitrate: 1_000,
            ..Default::default()
        },
        EncoderSettings {
            expected_loss_percent: 101,
            ..Default::default()
        },
    ] {
        assert!(matches!(
            OpusEncoder::new(&settings),
            Err(CodecError::InvalidSetting(_))
        ));
    }
    let mut encoder = encoder_for(CodecKind::Pcmu, &EncoderSettings::default()).unwrap();
    assert!(encoder.encode(&[0.0; 100], &mut [0u8; 200]).is_err());
}

#[test]
fn g711_conceals_three_lost_packets_with_the_voice_not_silence() {
    let mut encoder = encoder_for(CodecKind::Pcmu, &EncoderSettings::default()).unwrap();
    let mut decoder = decoder_for(CodecKind::Pcmu).unwrap();
    let mut heard = Vec::new();
    let mut frame = 0;
    let mut good = |decoder: &mut Box<dyn AudioDecoder>, frames: usize, heard: &mut Vec<f32>| {
        let mut packet = [0u8; 1500];
        let mut out = vec![0.0; MAX_PACKET_SAMPLES];
        for _ in 0..frames {
            let len = encoder
                .encode(&tone_frame(210.0, 0.4, frame), &mut packet)
                .unwrap();
            let n = decoder.decode(&packet[..len], &mut out).unwrap();
            heard.extend_from_slice(&out[..n]);
            frame += 1;
        }
    };
    good(&mut decoder, 20, &mut heard);
    let steady = &heard[heard.len() - 960..];
    let level = tutti_e2e::rms(steady);
    let steepest = steady
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0f32, f32::max);
    // Three packets lost: 60 ms.
    let start = heard.len();
    for _ in 0..3 {
        let mut concealed = vec![0.0; 960];
        assert_eq!(decoder.conceal(&mut concealed).unwrap(), 960);
        heard.extend_from_slice(&concealed);
    }
    let lost = &heard[start..];
    for (i, block) in lost[..1920].chunks(480).enumerate() {
        let ratio = tutti_e2e::rms(block) / level;
        assert!(
            ratio > 0.3,
            "10 ms block {i} of the loss fell to {ratio:.2} of the voice's level"
        );
    }
    assert!(
        amplitude_at(&lost[..960], 210.0) > 0.25,
        "the pitch carries on"
    );
    // The voice comes back without a click.
    good(&mut decoder, 5, &mut heard);
    let joint = &heard[start + 2880 - 48..start + 2880 + 480];
    let jump = joint
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0f32, f32::max);
    assert!(jump <= 1.5 * steepest, "a click: {jump} against {steepest}");
}

#[test]
fn mixes_default_to_wideband_celt_at_96_kbps() {
    assert_eq!(
        EncoderSettings::default(),
        EncoderSettings {
            application: OpusApplication::Audio,
            bitrate: 96_000,
            complexity: 0,
            inband_fec: true,
            dtx: false,
            expected_loss_percent: 5,
            max_bandwidth: OpusBandwidth::Wideband,
        }
    );
    // A listener that asks for nothing gets the configured settings, without FEC.
    let configured = EncoderSettings::default();
    assert_eq!(
        configured.toward_listener(None, false),
        EncoderSettings {
            inband_fec: false,
            ..configured
        }
    );
}

#[test]
fn a_listener_asking_for_fec_gets_silk_with_fec() {
    let configured = EncoderSettings::default();
    assert_eq!(
        configured.toward_listener(None, true),
        EncoderSettings {
            application: OpusApplication::Voip,
            bitrate: 64_000,
            complexity: 6,
            inband_fec: true,
            ..configured
        }
    );
    // FEC switched off in the configuration: nobody gets it.
    let no_fec = EncoderSettings {
        inband_fec: false,
        ..configured
    };
    assert_eq!(no_fec.toward_listener(None, true), no_fec);
    // Configured SILK keeps its complexity.
    let voip = EncoderSettings {
        application: OpusApplication::Voip,
        bitrate: 32_000,
        complexity: 2,
        ..configured
    };
    assert_eq!(voip.toward_listener(None, true), voip);
    assert_eq!(
        voip.toward_listener(None, false),
        EncoderSettings {
            inband_fec: false,
            ..voip
        }
    );
}

#[test]
fn a_listener_maxaveragebitrate_caps_the_bitrate_and_low_caps_get_silk() {
    let configured = EncoderSettings::default();
    // Still enough for CELT.
    assert_eq!(
        configured.toward_listener(Some(80_000), false),
        EncoderSettings {
            bitrate: 80_000,
            inband_fec: false,
            ..configured
        }
    );
    // Too little for CELT: SILK at the cap.
    assert_eq!(
        configured.toward_listener(Some(64_000), false),
        EncoderSettings {
            application: OpusApplication::Voip,
            bitrate: 64_000,
            complexity: 6,
            inband_fec: false,
            ..configured
        }
    );
    // Configured CELT below that bitrate stays as configured.
    let low = EncoderSettings {
        bitrate: 32_000,
        complexity: 3,
        ..configured
    };
    assert_eq!(
        low.toward_listener(Some(48_000), false),
        EncoderSettings {
            inband_fec: false,
            ..low
        }
    );
    // A cap above the configured bitrate changes nothing.
    assert_eq!(
        configured.toward_listener(Some(200_000), false).bitrate,
        96_000
    );
    // Every result is a valid encoder.
    for cap in [None, Some(6_000), Some(30_000), Some(510_000)] {
        for fec in [false, true] {
            OpusEncoder::new(&configured.toward_listener(cap, fec)).unwrap();
        }
    }
}
