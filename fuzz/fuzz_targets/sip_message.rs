//! Any bytes as a SIP message, as tutti's SIP listener gets them: rsipstack's parser (a
//! datagram) and its stream framing (TCP), then every header the SIP layer reads, typed. An
//! error is fine; a panic is not. A parsed message prints and parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rsipstack::sip::prelude::*;
use rsipstack::sip::typed::Authorization;
use rsipstack::sip::SipMessage;
use rsipstack::transport::stream::{SipCodec, SipCodecType};
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Decoder;

/// Reads the headers a user agent server looks at, typed where rsipstack types them.
fn inspect(message: &SipMessage) {
    let _ = message.via_header().map(|h| h.typed());
    let _ = message.top_via_header();
    let _ = message.from_header().map(|h| h.typed());
    let _ = message.to_header().map(|h| h.typed());
    let _ = message.call_id_header();
    let _ = message.cseq_header().map(|h| h.typed());
    let _ = message.max_forwards_header();
    let _ = message.contact_header().map(|h| h.typed());
    let _ = message.typed_contact_headers();
    let _ = message.typed_record_route_headers();
    let _ = message.typed_route_headers();
    if let Some(authorization) = message.authorization_header() {
        let _ = Authorization::parse(authorization.value());
    }
    let _ = message.session_expires_header();
    let _ = message.www_authenticate_header().map(|h| h.typed());
    if let SipMessage::Request(request) = message {
        let _ = request.uri.to_string();
        let _ = request.method.to_string();
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = SipMessage::try_from(data) {
        inspect(&message);
        let printed = message.to_bytes();
        if let Ok(again) = SipMessage::try_from(&printed[..]) {
            inspect(&again);
        }
    }
    // The same bytes as a TCP stream: messages framed by Content-Length, one after another.
    let mut codec = SipCodec::new();
    let mut stream = BytesMut::from(data);
    while let Ok(Some(item)) = codec.decode(&mut stream) {
        if let SipCodecType::Message(message) = item {
            inspect(&message);
        }
    }
});
