//! The crate's error type.

/// Everything tutti-codec can refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A sample rate of zero, or a pair the resampler cannot be built for.
    #[error("cannot resample from {from} Hz to {to} Hz: {reason}")]
    UnsupportedRates {
        /// Source rate.
        from: u32,
        /// Target rate.
        to: u32,
        /// What the resampler said.
        reason: String,
    },
    /// The resampler failed while processing.
    #[error("resampling failed: {0}")]
    Resample(String),
    /// libopus refused a setting or a packet.
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// A payload longer than a decoder takes (120 ms of audio).
    #[error("payload of {bytes} bytes is too long for {codec}")]
    PayloadTooLong {
        /// The codec.
        codec: &'static str,
        /// Its length.
        bytes: usize,
    },
    /// An encoder was given something other than 20 ms of 48 kHz audio, or a buffer too small.
    #[error("{0}")]
    BadBuffer(&'static str),
    /// An encoder setting outside its range.
    #[error("invalid encoder setting: {0}")]
    InvalidSetting(&'static str),
}
