//! # tutti-outbound: which URLs tutti may call, and how tenants name media
//!
//! tutti makes HTTP requests on its tenants' behalf: it fetches prompts (`play`, entry and exit
//! tones, VoIPbin `play` actions) and delivers webhooks and callbacks. Those URLs come from the
//! API, so without a rule a tenant could make the server call itself, its neighbours on a
//! private network or a cloud metadata service. [`OutboundPolicy`] is that rule, the same for
//! every kind of request:
//!
//! - only `http://` and `https://` URLs, without a user name or password;
//! - the host's addresses — resolved by the policy itself, and only the addresses it checked are
//!   connected to — must be public: not loopback, private (RFC 1918, CGNAT 100.64/10),
//!   link-local (169.254/16, the metadata address among them), unspecified, multicast,
//!   broadcast, documentation or otherwise reserved, nor their IPv6 forms (ULA, link-local,
//!   IPv4-mapped, NAT64, 6to4), nor an address of the server itself;
//! - an operator may list hosts that are let through anyway ([`AllowedHost`]: `name`,
//!   `name:port`, an IP address, `[v6]:port`); a host listed with a port is called only on
//!   that port.
//!
//! [`OutboundPolicy::check_url`] decides what can be decided from the text (at write time:
//! scheme, user info, literal addresses); [`OutboundPolicy::resolve`] decides the rest when the
//! request is made, after DNS resolution. Redirects are a caller's concern: each hop is a new
//! URL to check.
//!
//! Media a tenant names is a tone string, a URL under the rule above, or the plain name of a
//! file in the server's media directory — never a path ([`media_reference`]).
//!
//! ```
//! use tutti_outbound::OutboundPolicy;
//!
//! let policy = OutboundPolicy::default();
//! assert!(policy.check_url("https://media.example.com/welcome.wav").is_ok());
//! assert!(policy.check_url("http://169.254.169.254/latest/meta-data/").is_err());
//! let lab = OutboundPolicy::allowing(["127.0.0.1:8080"]).unwrap();
//! assert!(lab.check_url("http://127.0.0.1:8080/hook").is_ok());
//! assert!(lab.check_url("http://127.0.0.1:22/").is_err());
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};

pub use url::Url;

/// Why a URL or media name is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// The text is not an absolute URL.
    #[error("not an absolute URL")]
    Malformed,
    /// Not `http` or `https`.
    #[error("only http:// and https:// URLs are accepted, not {0}://")]
    Scheme(String),
    /// The URL carries a user name or password.
    #[error("the URL must not carry a user name or password")]
    UserInfo,
    /// The URL names no host.
    #[error("the URL names no host")]
    NoHost,
    /// The host is allowed by the operator only on other ports.
    #[error("{host} is reachable only on the port(s) the server's settings list")]
    Port {
        /// The host as written.
        host: String,
    },
    /// An address of a kind the server does not call.
    #[error("{address} is a {kind} address, which this server does not call")]
    Forbidden {
        /// The address.
        address: IpAddr,
        /// What kind it is (`loopback`, `private`, `link-local`, …).
        kind: &'static str,
    },
    /// An address of the server itself.
    #[error("{0} is an address of this server")]
    OwnAddress(IpAddr),
    /// The host did not resolve.
    #[error("{host} does not resolve: {reason}")]
    Unresolved {
        /// The host.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// Every address the host resolves to is refused.
    #[error("{host} resolves only to addresses this server does not call ({first})")]
    NoPublicAddress {
        /// The host.
        host: String,
        /// Why the first of them was refused.
        first: Box<OutboundError>,
    },
    /// A media file named by something other than a plain file name.
    #[error("a media file is named by a plain file name (letters, digits, '.', '-', '_'), not a path or another kind of URL")]
    NotAFileName,
}

/// A host the operator lets through whatever its addresses: `name`, `name:port`, an IP address,
/// `ip:port` or `[v6]:port`, matched against the host of a URL as written (a name entry does not
/// let through another name that resolves to the same address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHost {
    host: Host,
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    fn parse(text: &str) -> Host {
        let bare = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        match bare.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(canonical(ip)),
            Err(_) => Host::Name(bare.trim_end_matches('.').to_ascii_lowercase()),
        }
    }

    fn of_url(host: &url::Host<&str>) -> Host {
        match host {
            url::Host::Domain(name) => Host::parse(name),
            url::Host::Ipv4(ip) => Host::Ip(IpAddr::V4(*ip)),
            url::Host::Ipv6(ip) => Host::Ip(canonical(IpAddr::V6(*ip))),
        }
    }
}

impl std::str::FromStr for AllowedHost {
    type Err = OutboundError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() || text.contains(['/', '@', '?', '#', ' ']) {
            return Err(OutboundError::NoHost);
        }
        if text.parse::<Ipv6Addr>().is_ok() {
            return Ok(AllowedHost {
                host: Host::parse(text),
                port: None,
            });
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port))
                if !host.is_empty() && (!host.contains(':') || host.ends_with(']')) =>
            {
                let port = port.parse::<u16>().map_err(|_| OutboundError::Malformed)?;
                (host, Some(port))
            }
            Some(_) => return Err(OutboundError::Malformed),
            None => (text, None),
        };
        Ok(AllowedHost {
            host: Host::parse(host),
            port,
        })
    }
}

/// The outbound-address rule (see the crate documentation). `OutboundPolicy::default()` lets
/// through public addresses only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    allow: Vec<AllowedHost>,
    own_addresses: Vec<IpAddr>,
}

impl OutboundPolicy {
    /// The default rule plus `hosts`, which are let through whatever their addresses.
    pub fn allowing<'a>(hosts: impl IntoIterator<Item = &'a str>) -> Result<Self, OutboundError> {
        Ok(Self {
            allow: hosts
                .into_iter()
                .map(str::parse)
                .collect::<Result<_, _>>()?,
            own_addresses: Vec::new(),
        })
    }

    /// The same rule, also refusing `addresses` as the server's own (a public address in front
    /// of a NAT that no interface carries). Addresses of the server's interfaces are refused
    /// anyway.
    pub fn with_own_addresses(mut self, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        self.own_addresses
            .extend(addresses.into_iter().map(canonical));
        self
    }

    /// Whether `host` on `port` is on the operator's list (`port` `None`: on any port).
    fn allows(&self, host: &Host, port: Option<u16>) -> bool {
        self.allow.iter().any(|entry| {
            entry.host == *host && (entry.port.is_none() || port.is_none() || entry.port == port)
        })
    }

    /// Checks what can be decided from a URL's text: `http` or `https`, no user info, a host,
    /// and — when the host is an address, not a name — that address. Returns the parsed URL.
    pub fn check_url(&self, text: &str) -> Result<Url, OutboundError> {
        let url = Url::parse(text.trim()).map_err(|_| OutboundError::Malformed)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::Scheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OutboundError::UserInfo);
        }
        let host = match url.host() {
            Some(host) if !matches!(host, url::Host::Domain("")) => Host::of_url(&host),
            _ => return Err(OutboundError::NoHost),
        };
        let port = url.port_or_known_default();
        if self.allows(&host, port) {
            return Ok(url);
        }
        if self.allows(&host, None) {
            return Err(OutboundError::Port {
                host: url.host_str().unwrap_or_default().to_owned(),
            });
        }
        if let Host::Ip(ip) = host {
            self.check_address(ip)?;
        }
        Ok(url)
    }

    /// Checks one address a request would connect to (not on the operator's list).
    pub fn check_address(&self, ip: IpAddr) -> Result<(), OutboundError> {
        let ip = canonical(ip);
        if let Some(kind) = forbidden_kind(ip) {
            return Err(OutboundError::Forbidden { address: ip, kind });
        }
        if self.own_addresses.contains(&ip) || is_local_interface(ip) {
            return Err(OutboundError::OwnAddress(ip));
        }
        Ok(())
    }

    /// The addresses a request to `host` on `port` may connect to: all of them when the host
    /// is on the operator's list, else those [`check_address`](Self::check_address) passes
    /// (refused when none does). `port` `None` means "a port [`check_url`](Self::check_url)
    /// accepted" (for resolvers that are not told the port); the addresses then carry port 0.
    /// Resolution uses the system's resolver and blocks.
    pub fn resolve(&self, host: &str, port: Option<u16>) -> Result<Vec<SocketAddr>, OutboundError> {
        let parsed = Host::parse(host);
        let port_number = port.unwrap_or(0);
        let allowed = self.allows(&parsed, port);
        let addresses: Vec<SocketAddr> = match &parsed {
            Host::Ip(ip) => vec![SocketAddr::new(*ip, port_number)],
            Host::Name(name) => (name.as_str(), port_number)
                .to_socket_addrs()
                .map_err(|e| OutboundError::Unresolved {
                    host: host.to_owned(),
                    reason: e.to_string(),
                })?
                .collect(),
        };
        if allowed {
            return Ok(addresses);
        }
        let mut first = None;
        let checked: Vec<SocketAddr> = addresses
            .into_iter()
            .filter(|address| match self.check_address(address.ip()) {
                Ok(()) => true,
                Err(error) => {
                    first.get_or_insert(error);
                    false
                }
            })
            .collect();
        match (checked.is_empty(), first) {
            (false, _) => Ok(checked),
            (true, Some(first)) => Err(OutboundError::NoPublicAddress {
                host: host.to_owned(),
                first: Box::new(first),
            }),
            (true, None) => Err(OutboundError::Unresolved {
                host: host.to_owned(),
                reason: "no addresses".into(),
            }),
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is; others unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Whether a socket can be bound to `ip`: then it is an address of this machine.
fn is_local_interface(ip: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// What kind of non-public address `ip` is, or `None` for a public unicast address.
pub fn forbidden_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: [([u8; 4], u32, &str); 15] = [
        ([0, 0, 0, 0], 8, "unspecified"),
        ([10, 0, 0, 0], 8, "private"),
        ([100, 64, 0, 0], 10, "shared (CGNAT)"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 0, 0, 0], 24, "reserved"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([192, 88, 99, 0], 24, "reserved"),
        ([192, 168, 0, 0], 16, "private"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved or broadcast"),
    ];
    RANGES
        .iter()
        .find(|(net, bits, _)| in_v4(ip, *net, *bits))
        .map(|(_, _, kind)| *kind)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], bits: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

/// The IPv4 address inside an IPv6 form that carries one (mapped, NAT64, 6to4).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        Some(Ipv4Addr::from(bits as u32))
    } else if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        Some(Ipv4Addr::from((bits >> 80) as u32))
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return forbidden_v4(v4);
    }
    const RANGES: [([u16; 8], u32, &str); 9] = [
        ([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified"),
        ([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback"),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local"),
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique local (private)"),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast"),
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, "documentation"),
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "documentation"),
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, "reserved"),
        ([0x2000, 0, 0, 0, 0, 0, 0, 0], 3, ""),
    ];
    match RANGES.iter().find(|(net, bits, _)| in_v6(ip, *net, *bits)) {
        // Global unicast (2000::/3) outside the special blocks above.
        Some((_, _, "")) => None,
        Some((_, _, kind)) => Some(kind),
        // Everything outside 2000::/3 is reserved, site-local or otherwise not public.
        None => Some("reserved"),
    }
}

/// Media as a tenant names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaReference {
    /// A tone string (`tone_stream://…`), synthesised.
    Tone(String),
    /// An `http(s)` URL that passed [`OutboundPolicy::check_url`]; fetched.
    Url(Url),
    /// The plain name of a file in the server's media directory.
    File(String),
}

/// Longest media file name.
pub const MAX_FILE_NAME: usize = 255;

/// Whether `name` is a plain file name: 1 to [`MAX_FILE_NAME`] letters, digits, `.`, `-` and
/// `_`, not starting with `.` (so neither `..` nor a hidden file).
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_FILE_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// What `text` names: a tone string, an allowed URL, or a file of the media directory. Paths,
/// `file://` and every other scheme are refused.
pub fn media_reference(
    text: &str,
    policy: &OutboundPolicy,
) -> Result<MediaReference, OutboundError> {
    if text.starts_with("tone_stream://") {
        return Ok(MediaReference::Tone(text.to_owned()));
    }
    let lower = text.trim_start().to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return policy.check_url(text).map(MediaReference::Url);
    }
    if is_plain_file_name(text) {
        return Ok(MediaReference::File(text.to_owned()));
    }
    Err(OutboundError::NotAFileName)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &OutboundPolicy, url: &str) -> OutboundError {
        policy
            .check_url(url)
            .expect_err(&format!("{url} should be refused"))
    }

    #[test]
    fn the_default_refuses_local_private_and_special_addresses() {
        let policy = OutboundPolicy::default();
        for (url, kind) in [
            ("http://127.0.0.1/", "loopback"),
            ("http://127.1.2.3:8080/x", "loopback"),
            ("http://2130706433/", "loopback"),
            ("http://0x7f.1/", "loopback"),
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://10.1.2.3/", "private"),
            ("http://172.16.0.1/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://100.64.0.1/", "shared (CGNAT)"),
            ("http://0.0.0.0/", "unspecified"),
            ("http://224.0.0.1/", "multicast"),
            ("http://255.255.255.255/", "reserved or broadcast"),
            ("http://192.0.2.1/", "documentation"),
            ("http://[::1]/", "loopback"),
            ("http://[::]/", "unspecified"),
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://[::ffff:169.254.169.254]/", "link-local"),
            ("http://[64:ff9b::a00:1]/", "private"),
            ("http://[2002:7f00:1::]/", "loopback"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[fd00::1]/", "unique local (private)"),
            ("http://[ff02::1]/", "multicast"),
            ("http://[2001:db8::1]/", "documentation"),
            ("http://[fec0::1]/", "reserved"),
        ] {
            match refused(&policy, url) {
                OutboundError::Forbidden { kind: got, .. } => assert_eq!(got, kind, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn only_http_without_user_info() {
        let policy = OutboundPolicy::default();
        assert_eq!(
            refused(&policy, "http://user:pass@example.com/"),
            OutboundError::UserInfo
        );
        assert_eq!(
            refused(&policy, "http://user@example.com/"),
            OutboundError::UserInfo
        );
        assert_eq!(
            refused(&policy, "gopher://example.com:70/_x"),
            OutboundError::Scheme("gopher".into())
        );
        assert_eq!(
            refused(&policy, "file:///etc/passwd"),
            OutboundError::Scheme("file".into())
        );
        assert_eq!(refused(&policy, "/etc/passwd"), OutboundError::Malformed);
        assert!(policy.check_url("https://example.com/a.wav").is_ok());
        assert!(policy.check_url("http://93.184.215.14:8080/a.wav").is_ok());
        assert!(policy.check_url("http://[2606:4700::1111]/").is_ok());
    }

    #[test]
    fn listed_hosts_pass_on_their_ports_only() {
        let policy = OutboundPolicy::allowing([
            "media.internal:8080",
            "10.0.0.5",
            "[::1]:9000",
            "127.0.0.1",
        ])
        .unwrap();
        assert!(policy.check_url("http://media.internal:8080/x.wav").is_ok());
        assert!(policy.check_url("http://MEDIA.internal:8080/").is_ok());
        assert!(matches!(
            refused(&policy, "http://media.internal/x.wav"),
            OutboundError::Port { .. }
        ));
        assert!(policy.check_url("http://10.0.0.5/").is_ok());
        assert!(policy.check_url("https://10.0.0.5:8443/").is_ok());
        assert!(matches!(
            refused(&policy, "http://10.0.0.6/"),
            OutboundError::Forbidden { .. }
        ));
        assert!(policy.check_url("http://[::1]:9000/").is_ok());
        assert!(matches!(
            refused(&policy, "http://[::1]:9001/"),
            OutboundError::Port { .. }
        ));
        assert!(policy.check_url("http://127.0.0.1:1234/").is_ok());
        assert!(policy.check_url("http://[::ffff:127.0.0.1]:1234/").is_ok());
        // Listing never lets user info or other schemes through.
        assert_eq!(
            refused(&policy, "http://a:b@10.0.0.5/"),
            OutboundError::UserInfo
        );
        assert!(OutboundPolicy::allowing(["http://x/"]).is_err());
        assert!(OutboundPolicy::allowing(["x:notaport"]).is_err());
    }

    #[test]
    fn resolution_keeps_only_checked_addresses() {
        let policy = OutboundPolicy::default();
        assert!(matches!(
            policy.resolve("localhost", Some(80)),
            Err(OutboundError::NoPublicAddress { .. })
        ));
        assert!(matches!(
            policy.resolve("127.0.0.1", Some(80)),
            Err(OutboundError::NoPublicAddress { .. })
        ));
        assert!(matches!(
            policy.resolve("[::1]", None),
            Err(OutboundError::NoPublicAddress { .. })
        ));
        let listed = OutboundPolicy::allowing(["localhost:8080"]).unwrap();
        let addresses = listed.resolve("localhost", Some(8080)).unwrap();
        assert!(addresses
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 8080));
        assert!(listed.resolve("localhost", Some(8081)).is_err());
        assert!(listed.resolve("localhost", None).is_ok());
    }

    #[test]
    fn the_servers_own_addresses_are_refused() {
        let policy = OutboundPolicy::default().with_own_addresses(["8.8.8.8".parse().unwrap()]);
        assert_eq!(
            refused(&policy, "http://8.8.8.8/"),
            OutboundError::OwnAddress("8.8.8.8".parse().unwrap())
        );
        assert!(OutboundPolicy::default()
            .check_url("http://8.8.8.8/")
            .is_ok());
        assert!(is_local_interface("127.0.0.1".parse().unwrap()));
        assert!(!is_local_interface("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn media_is_a_tone_an_allowed_url_or_a_plain_file_name() {
        let policy = OutboundPolicy::default();
        assert_eq!(
            media_reference("tone_stream://%(100,0,440)", &policy),
            Ok(MediaReference::Tone("tone_stream://%(100,0,440)".into()))
        );
        assert_eq!(
            media_reference("welcome-en_1.wav", &policy),
            Ok(MediaReference::File("welcome-en_1.wav".into()))
        );
        assert!(matches!(
            media_reference("https://example.com/a.wav", &policy),
            Ok(MediaReference::Url(_))
        ));
        for bad in [
            "/etc/passwd",
            "../secret.wav",
            "..",
            ".hidden.wav",
            "a/b.wav",
            "a\\b.wav",
            "file:///etc/passwd",
            "file://recordings/x.wav",
            "gopher://example.com/",
            "ftp://example.com/a.wav",
            "data/recordings/0193/1.wav",
            "",
        ] {
            assert_eq!(
                media_reference(bad, &policy),
                Err(OutboundError::NotAFileName),
                "{bad}"
            );
        }
        assert!(matches!(
            media_reference("http://169.254.169.254/x", &policy),
            Err(OutboundError::Forbidden { .. })
        ));
        assert_eq!(
            media_reference("HTTP://u:p@example.com/", &policy),
            Err(OutboundError::UserInfo)
        );
    }
}
