//! The `[webrtc]` settings: defaults, ICE servers, unknown keys refused.

use tutti_webrtc::{IceServer, WebRtcConfig};

#[test]
fn webrtc_settings_have_defaults_and_refuse_unknown_keys() {
    let config: WebRtcConfig = toml::from_str("").unwrap();
    assert_eq!(config, WebRtcConfig::default());
    assert!(config.enabled);
    assert_eq!(config.listen, "0.0.0.0:7882".parse().unwrap());
    assert_eq!(config.public_address, None);
    assert!(config.ice_servers.is_empty());

    let config: WebRtcConfig = toml::from_str(
        r#"
        listen = "0.0.0.0:8443"
        public_address = "203.0.113.7"
        [[ice_servers]]
        urls = ["stun:stun.example.org:3478"]
        [[ice_servers]]
        urls = ["turn:turn.example.org:3478?transport=udp"]
        username = "tutti"
        credential = "secret"
        "#,
    )
    .unwrap();
    assert_eq!(config.listen.port(), 8443);
    assert_eq!(config.public_address, Some("203.0.113.7".parse().unwrap()));
    assert_eq!(
        config.ice_servers[1],
        IceServer {
            urls: vec!["turn:turn.example.org:3478?transport=udp".into()],
            username: Some("tutti".into()),
            credential: Some("secret".into()),
        }
    );

    let error = toml::from_str::<WebRtcConfig>("listne = \"0.0.0.0:1\"").unwrap_err();
    assert!(
        error.to_string().contains("unknown field `listne`"),
        "{error}"
    );
}
