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
}
