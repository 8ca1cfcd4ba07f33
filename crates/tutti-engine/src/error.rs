//! The crate's error type.

use std::path::PathBuf;

/// Everything tutti-engine can refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A WAV file could not be read or written.
    #[error("{path}: {source}")]
    Wav {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: hound::Error,
    },
    /// A WAV file holds something tutti cannot play.
    #[error("{path}: {reason}")]
    UnsupportedWav {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Resampling failed.
    #[error(transparent)]
    Codec(#[from] tutti_codec::CodecError),
    /// The mixer refused something.
    #[error(transparent)]
    Mix(#[from] tutti_mix::MixError),
    /// A mixdown without callers.
    #[error("a mixdown needs at least one caller")]
    NoCallers,
}
