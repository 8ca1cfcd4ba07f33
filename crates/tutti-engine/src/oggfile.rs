//! Ogg prompt files: Ogg Opus (RFC 7845) through tutti-codec's Opus decoder, Ogg Vorbis
//! through lewton. Both come out as 48 kHz mono f32, decoded off the mixer thread.

use std::io::Cursor;
use std::path::Path;

use lewton::inside_ogg::OggStreamReader;
use lewton::samples::InterleavedSamples;
use ogg::PacketReader;
use tutti_codec::{AudioDecoder, OpusDecoder, MAX_PACKET_SAMPLES};
use tutti_mix::SAMPLE_RATE;

use crate::EngineError;

/// The first bytes of every Ogg page.
pub(crate) const OGG_MAGIC: &[u8; 4] = b"OggS";

/// What an Ogg Opus stream's identification header says about decoding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OpusHead {
    /// Samples (at 48 kHz) to drop from the start of the decoded stream.
    pre_skip: u16,
    /// Gain to apply, in dB as Q7.8.
    output_gain: i16,
}

fn parse_opus_head(data: &[u8]) -> Result<OpusHead, String> {
    if data.len() < 19 {
        return Err("its OpusHead header is truncated".into());
    }
    let version = data[8];
    if version >> 4 != 0 {
        return Err(format!("OpusHead version {version} is not supported"));
    }
    let channels = data[9];
    let pre_skip = u16::from_le_bytes([data[10], data[11]]);
    let output_gain = i16::from_le_bytes([data[16], data[17]]);
    let family = data[18];
    match (family, channels) {
        (0, 1 | 2) => Ok(OpusHead {
            pre_skip,
            output_gain,
        }),
        (0, n) => Err(format!("{n} channels in channel mapping family 0")),
        (family, n) => Err(format!(
            "channel mapping family {family} ({n} channels) is not supported: mono or stereo only"
        )),
    }
}

/// Decodes an Ogg Opus or Ogg Vorbis file (told apart by its first packet) to 48 kHz mono.
pub(crate) fn read_mono_48k(path: &Path) -> Result<Vec<f32>, EngineError> {
    let bytes = std::fs::read(path).map_err(|source| EngineError::ReadPrompt {
        path: path.to_owned(),
        source,
    })?;
    let mut packets = PacketReader::new(Cursor::new(&bytes[..]));
    let first = packets
        .read_packet()
        .map_err(|source| EngineError::Ogg {
            path: path.to_owned(),
            source,
        })?
        .ok_or_else(|| unsupported(path, "an Ogg file without packets"))?;
    if first.data.starts_with(b"OpusHead") {
        let head = parse_opus_head(&first.data).map_err(|reason| unsupported(path, reason))?;
        read_opus(path, head, first.stream_serial(), packets)
    } else if first.data.starts_with(b"\x01vorbis") {
        drop(packets);
        read_vorbis(path, &bytes)
    } else {
        Err(unsupported(
            path,
            "an Ogg stream of neither Opus nor Vorbis",
        ))
    }
}

fn unsupported(path: &Path, reason: impl Into<String>) -> EngineError {
    EngineError::UnsupportedPrompt {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Decodes the audio packets of the Opus stream `serial` after its OpusHead: the OpusTags
/// packet is skipped, the pre-skip dropped, the end trimmed to the last page's granule
/// position, the output gain applied. Stereo is downmixed by libopus, whose decoder here is
/// mono.
fn read_opus(
    path: &Path,
    head: OpusHead,
    serial: u32,
    mut packets: PacketReader<Cursor<&[u8]>>,
) -> Result<Vec<f32>, EngineError> {
    let ogg_error = |source| EngineError::Ogg {
        path: path.to_owned(),
        source,
    };
    let codec_error = |source| EngineError::PromptDecode {
        path: path.to_owned(),
        source,
    };
    let mut decoder = OpusDecoder::new().map_err(codec_error)?;
    let mut buffer = vec![0.0f32; MAX_PACKET_SAMPLES];
    let mut samples = Vec::new();
    let mut tags_seen = false;
    let mut end_granule = None;
    while let Some(packet) = packets.read_packet().map_err(ogg_error)? {
        if packet.stream_serial() != serial {
            continue; // another logical stream multiplexed alongside
        }
        if !tags_seen {
            if !packet.data.starts_with(b"OpusTags") {
                return Err(unsupported(path, "the OpusTags header is missing"));
            }
            tags_seen = true;
            continue;
        }
        if !packet.data.is_empty() {
            let n = decoder
                .decode(&packet.data, &mut buffer)
                .map_err(codec_error)?;
            samples.extend_from_slice(&buffer[..n.min(buffer.len())]);
        }
        if packet.last_in_page() && packet.absgp_page() != u64::MAX {
            end_granule = Some(packet.absgp_page());
        }
        if packet.last_in_stream() {
            break;
        }
    }
    // The granule position counts samples at 48 kHz, pre-skip included: it marks where the
    // stream really ends when the last packet was padded.
    if let Some(end) = end_granule {
        let end = usize::try_from(end).unwrap_or(usize::MAX);
        samples.truncate(end);
    }
    samples.drain(..usize::from(head.pre_skip).min(samples.len()));
    if head.output_gain != 0 {
        let gain = 10f32.powf(f32::from(head.output_gain) / (256.0 * 20.0));
        samples.iter_mut().for_each(|s| *s *= gain);
    }
    Ok(samples)
}

/// Decodes an Ogg Vorbis stream: channels averaged, resampled to 48 kHz.
fn read_vorbis(path: &Path, bytes: &[u8]) -> Result<Vec<f32>, EngineError> {
    let vorbis_error = |source| EngineError::Vorbis {
        path: path.to_owned(),
        source,
    };
    let mut stream = OggStreamReader::new(Cursor::new(bytes)).map_err(vorbis_error)?;
    let rate = stream.ident_hdr.audio_sample_rate;
    let mut mono = Vec::new();
    while let Some(packet) = stream
        .read_dec_packet_generic::<InterleavedSamples<f32>>()
        .map_err(vorbis_error)?
    {
        let channels = packet.channel_count.max(1);
        mono.extend(
            packet
                .samples
                .chunks(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
    }
    tutti_codec::resample_clip(&mono, rate, SAMPLE_RATE).map_err(|source| {
        EngineError::PromptDecode {
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(channels: u8, pre_skip: u16, gain: i16, family: u8) -> Vec<u8> {
        let mut data = b"OpusHead".to_vec();
        data.push(1);
        data.push(channels);
        data.extend_from_slice(&pre_skip.to_le_bytes());
        data.extend_from_slice(&48_000u32.to_le_bytes());
        data.extend_from_slice(&gain.to_le_bytes());
        data.push(family);
        data
    }

    #[test]
    fn opus_head_fields_are_read_and_multichannel_is_refused() {
        assert_eq!(
            parse_opus_head(&head(2, 312, -256, 0)),
            Ok(OpusHead {
                pre_skip: 312,
                output_gain: -256
            })
        );
        assert!(parse_opus_head(&head(6, 312, 0, 1)).is_err());
        assert!(parse_opus_head(&head(3, 312, 0, 0)).is_err());
        assert!(parse_opus_head(&head(0, 312, 0, 0)).is_err());
        assert!(parse_opus_head(&head(1, 312, 0, 0)[..18]).is_err());
        let mut future = head(1, 312, 0, 0);
        future[8] = 0x10;
        assert!(parse_opus_head(&future).is_err());
    }
}
