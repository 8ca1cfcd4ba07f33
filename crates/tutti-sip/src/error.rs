//! The SIP layer's errors.

/// What can go wrong starting or running the SIP server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SipError {
    /// A listener could not be opened.
    #[error("cannot listen for SIP on {address}: {reason}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        reason: String,
    },
    /// The TLS certificate or key could not be read.
    #[error("SIP TLS: {0}")]
    Tls(String),
    /// The SIP stack failed.
    #[error("SIP stack: {0}")]
    Stack(Box<rsipstack::Error>),
    /// A URI that is not a SIP URI.
    #[error("not a SIP URI: {0}")]
    Uri(String),
}

impl From<rsipstack::Error> for SipError {
    fn from(error: rsipstack::Error) -> Self {
        Self::Stack(Box::new(error))
    }
}
