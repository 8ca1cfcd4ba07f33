//! SIP over TLS, when the operator configures a certificate.

use std::net::SocketAddr;

use rsipstack::transport::tls::{TlsConfig as StackTlsConfig, TlsListenerConnection};
use rsipstack::transport::TransportLayer;

use crate::config::TlsConfig;
use crate::SipError;

/// Adds a TLS listener to `transport`; returns its address.
pub(crate) async fn listen(
    transport: &TransportLayer,
    config: &TlsConfig,
) -> Result<SocketAddr, SipError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|error| SipError::Tls(format!("{}: {error}", path.display())))
    };
    let stack_config = StackTlsConfig {
        cert: Some(read(&config.certificate)?),
        key: Some(read(&config.private_key)?),
        ..StackTlsConfig::default()
    };
    let listener = TlsListenerConnection::new(config.listen, None, stack_config)
        .await
        .map_err(|error| SipError::Listen {
            address: config.listen,
            reason: error.to_string(),
        })?;
    transport.add_transport(listener.into());
    tracing::info!(address = %config.listen, "SIP listening on TLS");
    Ok(config.listen)
}
