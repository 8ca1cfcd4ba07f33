//! G.722 against FFmpeg's independent implementation: same bytes out of the encoder, same
//! samples out of the decoder.

use tutti_codec::g722::{G722Decoder, G722Encoder};

fn samples(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

const INPUT: &[u8] = include_bytes!("fixtures/g722/input.s16le");
const ENCODED: &[u8] = include_bytes!("fixtures/g722/ffmpeg.g722");
const DECODED: &[u8] = include_bytes!("fixtures/g722/ffmpeg-decoded.s16le");

#[test]
fn encoder_matches_ffmpeg_bit_for_bit() {
    let input = samples(INPUT);
    // In 20 ms packets, as on the wire: the state carries across calls.
    let mut encoder = G722Encoder::new();
    let mut encoded = vec![0u8; input.len() / 2];
    for (pcm, out) in input.chunks(320).zip(encoded.chunks_mut(160)) {
        assert_eq!(encoder.encode(pcm, out), out.len());
    }
    let first_difference = encoded.iter().zip(ENCODED).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "encoder differs from FFmpeg");
}

#[test]
fn decoder_matches_ffmpeg_bit_for_bit() {
    let expected = samples(DECODED);
    let mut decoder = G722Decoder::new();
    let mut decoded = vec![0i16; ENCODED.len() * 2];
    for (bytes, out) in ENCODED.chunks(160).zip(decoded.chunks_mut(320)) {
        assert_eq!(decoder.decode(bytes, out), out.len());
    }
    let first_difference = decoded.iter().zip(&expected).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "decoder differs from FFmpeg");
}
