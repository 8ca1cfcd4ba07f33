//! Arbitrary datagrams from arbitrary sources on the WebRTC port: routed by the endpoint's
//! demux to one of two peers (real str0m peers that answered an offer) or dropped for a reason,
//! never a panic. Only the peers' ufrags and the addresses they sent to reach them.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Instant;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use str0m::config::DtlsCert;
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Input, Output};
use tutti_webrtc::demux::{Demux, Route};
use tutti_webrtc::offer::{accept, certificate, parse_offer};

static CERT: OnceLock<DtlsCert> = OnceLock::new();

const OFFER: &str = include_str!("../corpus/webrtc_offer/chrome-sendrecv.sdp");

#[derive(Arbitrary, Debug)]
struct Datagram {
    /// The last octet and port of the source (198.51.100.x).
    host: u8,
    port: u16,
    /// Makes the datagram a STUN binding request with this USERNAME prefix index, when set.
    stun_user: Option<u8>,
    bytes: Vec<u8>,
}

fuzz_target!(|datagrams: Vec<Datagram>| {
    let cert = CERT.get_or_init(|| certificate().expect("certificate"));
    let local: SocketAddr = "203.0.113.1:7882".parse().expect("address");
    let mut demux = Demux::new();
    // The peers' ufrags are fixed; a peer's stack is built when a datagram first reaches it.
    let ufrags = ["peerufragone", "peerufragtwo"];
    let mut peers: [Option<str0m::Rtc>; 2] = [None, None];
    for (token, ufrag) in [1u64, 2].into_iter().zip(ufrags) {
        demux.add_peer(token, ufrag);
    }
    let now = Instant::now();
    for d in datagrams.iter().take(64) {
        let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, d.host)), d.port);
        let mut bytes = d.bytes.clone();
        if let Some(user) = d.stun_user {
            // A well-formed header so STUN parsing gets past it, naming a peer half the time.
            let name = match user % 3 {
                0 => ufrags[0],
                1 => ufrags[1],
                _ => "stranger",
            };
            let username = format!("{name}:remote");
            let message = str0m::ice::StunMessage::binding_request(
                &username,
                str0m::ice::TransId::new(),
                true,
                u64::from(user),
                100,
                user % 2 == 0,
            );
            let mut buf = [0u8; 256];
            if let Ok(len) = message.to_bytes(Some(&bytes), &mut buf, |_, _| [1; 20]) {
                bytes = buf[..len].to_vec();
            }
        }
        let token = match demux.route(source, &bytes) {
            Route::Peer(token) => token,
            Route::Drop(_) => continue,
        };
        assert!(
            token == 1 || token == 2,
            "routed to a peer that does not exist"
        );
        let Ok(contents) = DatagramRecv::try_from(&bytes[..]) else {
            continue;
        };
        let index = (token - 1) as usize;
        let rtc = peers[index].get_or_insert_with(|| {
            let summary = parse_offer(OFFER).expect("the seed offer parses");
            let (mut rtc, _) = accept(summary, 1, cert, local).expect("the seed offer is taken");
            rtc.direct_api().set_local_ice_credentials(str0m::IceCreds {
                ufrag: ufrags[index].to_owned(),
                pass: "peerpasswordpeerpassword".to_owned(),
            });
            rtc
        });
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: local,
                contents,
            },
        );
        if !rtc.accepts(&input) || rtc.handle_input(input).is_err() {
            continue;
        }
        for _ in 0..32 {
            match rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    demux.learn(token, t.destination);
                }
                Ok(Output::Event(_)) => {}
                Ok(Output::Timeout(_)) | Err(_) => break,
            }
        }
    }
    for (token, ufrag) in [1u64, 2].into_iter().zip(ufrags) {
        demux.remove_peer(token, ufrag);
    }
    assert_eq!(demux.peers(), 0);
});
