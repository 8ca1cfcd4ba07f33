//! The `[sip]` section of the server's configuration.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;
use uuid::Uuid;

/// How tutti speaks SIP.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// Whether the SIP server runs at all.
    pub enabled: bool,
    /// Where UDP and TCP listen. Like the HTTP API, loopback unless configured.
    pub listen: SocketAddr,
    /// The address phones are told to reach this server at (Contact, Via); `listen`'s when
    /// unset or unspecified.
    pub public_address: Option<IpAddr>,
    /// The digest authentication realm. Credentials are stored for one realm: changing it
    /// means setting every account's SIP passwords again.
    pub realm: String,
    /// Also offer SHA-256 digest challenges (RFC 8760) beside MD5. Off by default: some phones
    /// (baresip 1.0, Debian 12's) give up on a 401 that offers SHA-256 at all.
    pub digest_sha256: bool,
    /// Session interval offered to callers that support session timers (RFC 4028), seconds.
    pub session_expires_seconds: u32,
    /// Shortest session interval accepted (`Min-SE`), seconds; at least 90.
    pub min_session_expires_seconds: u32,
    /// SIP over TLS, when a certificate is configured.
    pub tls: Option<TlsConfig>,
    /// Sources that may call without digest authentication (PBXs, carriers).
    pub trunks: Vec<TrunkConfig>,
    /// How dial-out calls leave.
    pub outbound: OutboundConfig,
}

/// SIP over TLS.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Where TLS listens (5061 by convention).
    pub listen: SocketAddr,
    /// PEM certificate chain.
    pub certificate: PathBuf,
    /// PEM private key.
    pub private_key: PathBuf,
}

/// A trusted source of calls: requests from its networks are not challenged.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// A name for logs.
    pub name: String,
    /// Source networks, e.g. `["192.0.2.10/32", "198.51.100.0/24"]`.
    pub networks: Vec<IpNet>,
    /// The account its calls belong to. Without one, the dialed number must be one of an
    /// account's SIP numbers, which names the account.
    pub account: Option<Uuid>,
}

/// Dial-out settings.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Every dial-out INVITE goes to this proxy (`sip:proxy.example.net:5060`) when set;
    /// otherwise to the target URI's host.
    pub proxy: Option<String>,
    /// Digest username for the proxy or the far end's challenges.
    pub username: Option<String>,
    /// Digest password.
    pub password: Option<String>,
    /// Seconds a dial-out call may ring before it is given up (the `dial` action's own
    /// `timeout` wins when shorter).
    pub ring_timeout_seconds: u32,
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            public_address: None,
            realm: "tutti".into(),
            digest_sha256: false,
            session_expires_seconds: 1800,
            min_session_expires_seconds: 90,
            tls: None,
            trunks: Vec::new(),
            outbound: OutboundConfig {
                ring_timeout_seconds: 60,
                ..OutboundConfig::default()
            },
        }
    }
}

impl SipConfig {
    /// The trunk a source address belongs to.
    pub fn trunk_of(&self, source: IpAddr) -> Option<&TrunkConfig> {
        let source = canonical(source);
        self.trunks
            .iter()
            .find(|trunk| trunk.networks.iter().any(|net| net.contains(&source)))
    }

    /// The address put in Contact headers.
    pub fn contact_address(&self) -> IpAddr {
        match self.public_address {
            Some(address) if !address.is_unspecified() => address,
            _ if self.listen.ip().is_unspecified() => IpAddr::from([127, 0, 0, 1]),
            _ => self.listen.ip(),
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunks_match_their_networks_only() {
        // The server reads TOML; the shape is the same through any serde format.
        let config: SipConfig = serde_json::from_str(
            r#"{"trunks":[{"name":"pbx","networks":["192.0.2.0/24","2001:db8::/32"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            config
                .trunk_of("192.0.2.77".parse().unwrap())
                .map(|t| t.name.as_str()),
            Some("pbx")
        );
        assert!(config
            .trunk_of("::ffff:192.0.2.1".parse().unwrap())
            .is_some());
        assert!(config.trunk_of("2001:db8::1".parse().unwrap()).is_some());
        assert!(config.trunk_of("192.0.3.1".parse().unwrap()).is_none());
        assert!(SipConfig::default()
            .trunk_of("127.0.0.1".parse().unwrap())
            .is_none());
    }
}
