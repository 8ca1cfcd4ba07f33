//! The crate's one error type.

/// Why a load run could not be set up or finished.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The speech fixture could not be made (espeak-ng missing or failing).
    #[error("speech fixture: {0}")]
    Fixture(String),
    /// The server's API refused or failed a request that the run cannot do without.
    #[error("{what}: {detail}")]
    Api {
        /// The request, in words.
        what: String,
        /// The status and body, or the transport error.
        detail: String,
    },
    /// A setting is out of range.
    #[error("{0}")]
    Setting(String),
    /// A socket or file operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A socket call through nix failed.
    #[error("socket: {0}")]
    Socket(#[from] nix::Error),
    /// The Opus codec refused its settings or a frame.
    #[error(transparent)]
    Codec(#[from] tutti_codec::CodecError),
    /// A WAV file could not be written or read.
    #[error("WAV: {0}")]
    Wav(#[from] hound::Error),
}
