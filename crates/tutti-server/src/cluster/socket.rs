//! Websockets about one conference (a WHIP/WHEP session's events) forwarded to the node
//! running its room: the client's socket is accepted here and joined, message by message, to
//! a socket this node opens to the focus node with the cluster's headers.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as Upstream;
use tutti_cluster::Node;

use super::proxy::{CLUSTER_SECRET, FORWARDED_BY};

/// Whether `request` asks for a websocket.
pub(crate) fn is_upgrade(request: &Request) -> bool {
    request
        .headers()
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Opens the same websocket on `node` (with the request's own headers, such as its bearer
/// token, and the cluster's), then accepts the client's and joins the two.
pub(crate) async fn forward(me: &str, secret: &str, node: &Node, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", node.api_url.replacen("http", "ws", 1));
    let Ok(mut upstream_request) = url.as_str().into_client_request() else {
        return (
            StatusCode::BAD_GATEWAY,
            "the focus node's address is not a URL",
        )
            .into_response();
    };
    for name in [
        axum::http::header::AUTHORIZATION,
        axum::http::header::ORIGIN,
    ] {
        if let Some(value) = parts.headers.get(&name) {
            upstream_request.headers_mut().insert(name, value.clone());
        }
    }
    for (name, value) in [(FORWARDED_BY, me), (CLUSTER_SECRET, secret)] {
        if let Ok(value) = HeaderValue::from_str(value) {
            upstream_request.headers_mut().insert(name, value);
        }
    }
    let upstream = match tokio_tungstenite::connect_async(upstream_request).await {
        Ok((upstream, _)) => upstream,
        Err(tokio_tungstenite::tungstenite::Error::Http(refused)) => {
            // The focus node refused (401, 404…): the client gets its answer.
            let (head, body) = refused.into_parts();
            let mut response = Response::new(axum::body::Body::from(body.unwrap_or_default()));
            *response.status_mut() = head.status;
            return response;
        }
        Err(error) => {
            tracing::warn!(%error, node = %node.id, "a websocket could not be forwarded");
            return (
                StatusCode::BAD_GATEWAY,
                format!(
                    "the node running this conference's room ({}) did not answer",
                    node.id
                ),
            )
                .into_response();
        }
    };
    match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade.on_upgrade(move |client| join(client, upstream)),
        Err(rejection) => rejection.into_response(),
    }
}

type UpstreamSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Copies messages both ways until either side closes.
async fn join(client: WebSocket, upstream: UpstreamSocket) {
    let (mut client_tx, mut client_rx) = client.split();
    let (mut upstream_tx, mut upstream_rx) = upstream.split();
    let down = async {
        while let Some(Ok(message)) = upstream_rx.next().await {
            let closing = message.is_close();
            if client_tx.send(to_client(message)).await.is_err() || closing {
                break;
            }
        }
    };
    let up = async {
        while let Some(Ok(message)) = client_rx.next().await {
            let closing = matches!(message, Message::Close(_));
            if upstream_tx.send(to_upstream(message)).await.is_err() || closing {
                break;
            }
        }
    };
    tokio::select! {
        () = down => {},
        () = up => {},
    }
}

fn to_client(message: Upstream) -> Message {
    match message {
        Upstream::Text(text) => Message::Text(text.as_str().into()),
        Upstream::Binary(data) => Message::Binary(data),
        Upstream::Ping(data) => Message::Ping(data),
        Upstream::Pong(data) => Message::Pong(data),
        Upstream::Close(frame) => Message::Close(frame.map(|f| CloseFrame {
            code: f.code.into(),
            reason: f.reason.as_str().into(),
        })),
        Upstream::Frame(_) => Message::Binary(Default::default()),
    }
}

fn to_upstream(message: Message) -> Upstream {
    match message {
        Message::Text(text) => Upstream::Text(text.as_str().into()),
        Message::Binary(data) => Upstream::Binary(data),
        Message::Ping(data) => Upstream::Ping(data),
        Message::Pong(data) => Upstream::Pong(data),
        Message::Close(frame) => {
            Upstream::Close(
                frame.map(|f| tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: CloseCode::from(f.code),
                    reason: f.reason.as_str().into(),
                }),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use axum::Router;

    use super::*;

    /// A focus node whose events socket echoes what it gets, prefixed with the forwarding
    /// node's id, and refuses a request without a bearer token.
    async fn focus() -> Node {
        let app = Router::new().route(
            "/whip/{id}/sessions/{sid}/events",
            get(
                |headers: axum::http::HeaderMap, upgrade: WebSocketUpgrade| async move {
                    if headers.get("authorization").is_none() {
                        return (StatusCode::UNAUTHORIZED, "no token").into_response();
                    }
                    let by = headers[FORWARDED_BY].to_str().unwrap_or("").to_owned();
                    upgrade.on_upgrade(move |mut socket| async move {
                        while let Some(Ok(Message::Text(text))) = socket.recv().await {
                            let echo = format!("{by}: {}", text.as_str());
                            if socket.send(Message::Text(echo.into())).await.is_err() {
                                return;
                            }
                        }
                    })
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Node {
            id: "b".into(),
            api_url: format!("http://{address}"),
        }
    }

    /// A node in front that forwards every request to `node`.
    async fn front(node: Node) -> std::net::SocketAddr {
        let app = Router::new().fallback(move |request: Request| {
            let node = node.clone();
            async move { forward("a", "secret", &node, request).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        address
    }

    #[tokio::test]
    async fn a_session_s_events_socket_is_joined_to_the_focus_node() {
        let front = front(focus().await).await;
        let path = format!("ws://{front}/whip/x/sessions/y/events");
        let mut request = path.as_str().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", HeaderValue::from_static("Bearer t"));
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        socket.send(Upstream::Text("hello".into())).await.unwrap();
        let echoed = socket.next().await.unwrap().unwrap();
        assert_eq!(echoed.to_text().unwrap(), "a: hello");

        let refused = tokio_tungstenite::connect_async(path.as_str()).await;
        match refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            }
            other => panic!("the focus node's refusal comes back: {other:?}"),
        }
    }
}
