//! `tutti health`: asks a running server whether it is up (`GET /healthz`), for container
//! health checks and service supervisors that have no HTTP client of their own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context};

/// The `/healthz` URL of a server listening on `listen`: a wildcard address is asked on the
/// loopback address of its family.
pub fn url_for(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/healthz", SocketAddr::new(ip, listen.port()))
}

/// `GET url`: fine when the server answers 200 with `ok`, an error saying what it got
/// otherwise (no answer within `timeout`, another status, another body).
pub fn check(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let agent = ureq::AgentBuilder::new()
        .timeout(timeout)
        .redirects(0)
        .build();
    let response = match agent.get(url).call() {
        Ok(response) => response,
        Err(ureq::Error::Status(status, _)) => bail!("{url} answered {status}"),
        Err(error) => return Err(error).with_context(|| format!("asking {url}")),
    };
    let status = response.status();
    let body = response
        .into_string()
        .with_context(|| format!("reading the answer of {url}"))?;
    if status != 200 || body.trim() != "ok" {
        bail!("{url} answered {status} {:?}", body.trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A server that answers one request with `response` (a whole HTTP/1.1 response).
    fn answering(response: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = url_for(listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            stream.write_all(response.as_bytes()).unwrap();
        });
        url
    }

    #[test]
    fn wildcard_addresses_are_asked_on_loopback() {
        assert_eq!(
            url_for("0.0.0.0:8000".parse().unwrap()),
            "http://127.0.0.1:8000/healthz"
        );
        assert_eq!(
            url_for("[::]:8000".parse().unwrap()),
            "http://[::1]:8000/healthz"
        );
        assert_eq!(
            url_for("192.0.2.7:9000".parse().unwrap()),
            "http://192.0.2.7:9000/healthz"
        );
    }

    #[test]
    fn a_server_answering_ok_is_healthy() {
        let url = answering("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        check(&url, Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn another_status_or_body_is_not() {
        let url = answering(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        let error = check(&url, Duration::from_secs(5)).unwrap_err();
        assert_eq!(error.to_string(), format!("{url} answered 503"));

        let url =
            answering("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy");
        let error = check(&url, Duration::from_secs(5)).unwrap_err();
        assert_eq!(error.to_string(), format!("{url} answered 200 \"busy\""));
    }

    #[test]
    fn no_server_is_not_healthy() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/healthz");
        let error = check(&url, Duration::from_secs(5)).unwrap_err();
        assert_eq!(error.to_string(), format!("asking {url}"));
    }
}
