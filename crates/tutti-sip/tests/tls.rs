//! SIP over TLS with a configured certificate.

mod common;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tutti_sip::{SipConfig, SipServer, TlsConfig};

#[tokio::test]
async fn options_over_tls_are_answered_with_the_configured_certificate() {
    let world = common::World::new();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let folder = std::env::temp_dir().join(format!("tutti-sip-tls-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let certificate = folder.join("sip.crt");
    let private_key = folder.join("sip.key");
    std::fs::write(&certificate, certified.cert.pem()).unwrap();
    std::fs::write(&private_key, certified.key_pair.serialize_pem()).unwrap();
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = SipConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: Some(TlsConfig {
            listen,
            certificate,
            private_key,
        }),
        ..SipConfig::default()
    };
    let server = SipServer::start(config, world.service.clone())
        .await
        .unwrap();
    assert_eq!(server.local_addresses()[1], listen);

    let mut roots = RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let client = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let tcp = loop {
        match tokio::net::TcpStream::connect(listen).await {
            Ok(tcp) => break tcp,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("the TLS listener is not up: {error}"),
        }
    };
    let local = tcp.local_addr().unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let options = format!(
        "OPTIONS sip:{listen};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bKtls1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@localhost>;tag=a\r\nTo: <sip:{listen}>\r\n\
         Call-ID: tls1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    tls.write_all(options.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut answer))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    assert!(answer.contains("Call-ID: tls1"), "{answer}");
    let _ = std::fs::remove_dir_all(folder);
}
