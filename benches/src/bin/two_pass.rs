//! The offline floor of a conference's speech quality: speech coded twice with Opus, as it is
//! between a caller and a listener, with nothing else in the way (no jitter, no mixing, no
//! network).
//!
//! ```text
//! two_pass IN.wav OUT.wav [--drops FILE] [--talker-fec] [--talker-mode audio|voip]
//!          [--talker-bitrate BPS] [--mix-mode audio|voip] [--mix-bitrate BPS]
//!          [--mix-complexity N] [--mix-bandwidth wideband|…] [--mix-fec true|false]
//!          [--listener-fmtp FMTP]
//! ```
//!
//! IN.wav is 48 kHz mono 16-bit speech. Pass one is the talker: libopus as GStreamer's `opusenc`
//! uses it by default ("audio" mode, 64 kb/s) at complexity 10, with in-band FEC at 5 %
//! expected loss under `--talker-fec`. The
//! packets whose 0-based indices are listed in FILE (whitespace- or comma-separated) are lost;
//! the decoder recovers each from the next packet's FEC when it carries some, else conceals it,
//! as an ideal jitter buffer would. Pass two is tutti's mix encoder: the `[media.opus]`
//! settings (the server's defaults unless overridden, as `--mix-…`) adapted to a listener whose
//! offer has `a=fmtp:… FMTP`, decoded without loss. OUT.wav is the result at
//! 48 kHz. The encoding time per 20 ms frame of pass two goes to stderr.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tutti_codec::{
    AudioDecoder, AudioEncoder, EncoderSettings, OpusApplication, OpusBandwidth, OpusDecoder,
    OpusEncoder, FRAME_SAMPLES_48K, MAX_PACKET_SAMPLES,
};
use tutti_rtp::sdp::OpusParameters;

struct Options {
    input: String,
    output: String,
    drops: HashSet<usize>,
    talker: EncoderSettings,
    mix: EncoderSettings,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut drops = HashSet::new();
    let mut mix = EncoderSettings::default();
    let mut listener = OpusParameters::default();
    let mut talker = talker_defaults();
    let value = |name: &str, args: &mut dyn Iterator<Item = String>| {
        args.next().ok_or_else(|| format!("{name} needs a value"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--drops" => {
                let path = value(&arg, &mut args)?;
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                for word in text.split(|c: char| c.is_whitespace() || c == ',') {
                    if !word.is_empty() {
                        drops.insert(word.parse().map_err(|_| format!("{path}: {word:?}"))?);
                    }
                }
            }
            "--talker-fec" => talker.inband_fec = true,
            "--talker-mode" => talker.application = mode(&value(&arg, &mut args)?)?,
            "--talker-bitrate" => {
                talker.bitrate = number("--talker-bitrate", &value(&arg, &mut args)?)?;
            }
            "--mix-mode" => mix.application = mode(&value(&arg, &mut args)?)?,
            "--mix-bitrate" => mix.bitrate = number("--mix-bitrate", &value(&arg, &mut args)?)?,
            "--mix-complexity" => {
                mix.complexity = number("--mix-complexity", &value(&arg, &mut args)?)?;
            }
            "--mix-bandwidth" => {
                let name = value(&arg, &mut args)?;
                mix.max_bandwidth = OpusBandwidth::from_name(&name)
                    .ok_or_else(|| format!("--mix-bandwidth {name:?}"))?;
            }
            "--mix-fec" => mix.inband_fec = number("--mix-fec", &value(&arg, &mut args)?)?,
            "--listener-fmtp" => listener = OpusParameters::parse(&value(&arg, &mut args)?),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => positional.push(arg),
        }
    }
    let [input, output] = <[String; 2]>::try_from(positional)
        .map_err(|_| "usage: two_pass IN.wav OUT.wav [options]".to_owned())?;
    Ok(Options {
        input,
        output,
        drops,
        talker: EncoderSettings {
            expected_loss_percent: if talker.inband_fec { 5 } else { 0 },
            ..talker
        },
        mix: mix.toward_listener(listener.max_average_bitrate, listener.use_inband_fec),
    })
}

fn number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{name}: {text:?} is not a number"))
}

fn mode(text: &str) -> Result<OpusApplication, String> {
    OpusApplication::from_name(text).ok_or_else(|| format!("mode {text:?}: audio or voip"))
}

/// The talker: GStreamer's `opusenc` defaults (64 kb/s, "generic" audio) at complexity 10.
fn talker_defaults() -> EncoderSettings {
    EncoderSettings {
        application: OpusApplication::Audio,
        bitrate: 64_000,
        complexity: 10,
        inband_fec: false,
        dtx: false,
        expected_loss_percent: 0,
        max_bandwidth: OpusBandwidth::Fullband,
    }
}

fn encode_all(
    settings: &EncoderSettings,
    audio: &[f32],
    spent: &mut Duration,
) -> Result<Vec<Vec<u8>>, String> {
    let mut encoder = OpusEncoder::new(settings).map_err(|e| e.to_string())?;
    let mut packets = Vec::new();
    let mut out = [0u8; 1500];
    for frame in audio.chunks(FRAME_SAMPLES_48K) {
        let mut padded = [0.0f32; FRAME_SAMPLES_48K];
        padded[..frame.len()].copy_from_slice(frame);
        let started = Instant::now();
        let len = encoder
            .encode(&padded, &mut out)
            .map_err(|e| e.to_string())?;
        *spent += started.elapsed();
        packets.push(out[..len].to_vec());
    }
    Ok(packets)
}

fn decode_all(packets: &[Vec<u8>], drops: &HashSet<usize>) -> Result<Vec<f32>, String> {
    let mut decoder = OpusDecoder::new().map_err(|e| e.to_string())?;
    let mut audio = Vec::with_capacity(packets.len() * FRAME_SAMPLES_48K);
    let mut out = vec![0.0f32; MAX_PACKET_SAMPLES];
    for (index, packet) in packets.iter().enumerate() {
        let produced = if drops.contains(&index) {
            let next = packets
                .get(index + 1)
                .filter(|_| !drops.contains(&(index + 1)));
            let slot = &mut out[..FRAME_SAMPLES_48K];
            let recovered = match next {
                Some(next) => decoder.recover(next, slot).map_err(|e| e.to_string())?,
                None => None,
            };
            match recovered {
                Some(n) => n,
                None => decoder.conceal(slot).map_err(|e| e.to_string())?,
            }
        } else {
            decoder
                .decode(packet, &mut out)
                .map_err(|e| e.to_string())?
        };
        audio.extend_from_slice(&out[..produced]);
    }
    Ok(audio)
}

fn run(options: &Options) -> Result<(), String> {
    let mut reader = hound::WavReader::open(&options.input).map_err(|e| e.to_string())?;
    let spec = reader.spec();
    if spec.sample_rate != 48_000 || spec.channels != 1 || spec.bits_per_sample != 16 {
        return Err(format!("{}: 48 kHz mono 16-bit expected", options.input));
    }
    let speech: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| s.map(|s| f32::from(s) / 32768.0))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;

    let mut talker_time = Duration::ZERO;
    let talked = encode_all(&options.talker, &speech, &mut talker_time)?;
    let heard = decode_all(&talked, &options.drops)?;
    let mut mix_time = Duration::ZERO;
    let mixed = encode_all(&options.mix, &heard, &mut mix_time)?;
    let received = decode_all(&mixed, &HashSet::new())?;

    let bytes: usize = mixed.iter().map(Vec::len).sum();
    eprintln!(
        "mix encoder {:?}: {:.1} µs per 20 ms frame, {:.1} kb/s",
        options.mix,
        mix_time.as_secs_f64() * 1e6 / mixed.len().max(1) as f64,
        bytes as f64 * 8.0 / (mixed.len().max(1) as f64 * 0.02) / 1000.0
    );

    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&options.output, spec).map_err(|e| e.to_string())?;
    for sample in &received[..received.len().min(speech.len())] {
        let value = (sample * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
        writer.write_sample(value).map_err(|e| e.to_string())?;
    }
    writer.finalize().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match parse_args().and_then(|options| run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("two_pass: {message}");
            ExitCode::FAILURE
        }
    }
}
