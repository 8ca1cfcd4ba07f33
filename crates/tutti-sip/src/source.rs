//! Where a request really came from. The transport knows the packet's source address; the
//! SIP message only says where it claims to be. A message inspector stamps the real source on
//! each request in a header of tutti's own (removing any copy a caller sent), so that trunk
//! checks and media source checks use the address the packet came from.

use std::net::SocketAddr;

use rsipstack::sip::{Header, Request, SipMessage};
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;

/// The header that carries a request's source inside the server.
const SOURCE_HEADER: &str = "X-Tutti-Source";

/// Stamps requests with their source.
pub(crate) struct SourceStamp;

impl MessageInspector for SourceStamp {
    fn before_send(&self, msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        msg
    }

    fn after_received(&self, msg: SipMessage, from: Option<&SipAddr>) -> SipMessage {
        let SipMessage::Request(mut request) = msg else {
            return msg;
        };
        request.headers.retain(|header| {
            !matches!(header, Header::Other(name, _) if name.eq_ignore_ascii_case(SOURCE_HEADER))
        });
        if let Some(address) = from.and_then(|from| from.get_socketaddr().ok()) {
            request
                .headers
                .push(Header::Other(SOURCE_HEADER.into(), address.to_string()));
        }
        SipMessage::Request(request)
    }
}

/// The address a request came from, as the transport saw it.
pub(crate) fn source_of(request: &Request) -> Option<SocketAddr> {
    request.headers.iter().find_map(|header| match header {
        Header::Other(name, value) if name.eq_ignore_ascii_case(SOURCE_HEADER) => {
            value.parse().ok()
        }
        _ => None,
    })
}
