//! Websocket subscriptions live as long as the token that authorised them: when it expires
//! the server sends the face's error message and closes the socket with 1008 (policy
//! violation) and the reason [`EXPIRED`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket};
use tokio::time::Instant;

/// The close reason of a socket whose token expired.
pub(crate) const EXPIRED: &str = "the token expired";

/// The instant a token expiring at `expires` (Unix seconds) stops working.
pub(crate) fn deadline(expires: i64) -> Instant {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(expires).unwrap_or(0));
    let left = at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    // A deadline beyond what the clock can hold never comes.
    Instant::now()
        .checked_add(left)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400))
}

/// Resolves at `deadline`; never without one.
pub(crate) async fn reached(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sends `notice` (the face's error message) and closes the socket: its token expired.
pub(crate) async fn close(socket: &mut WebSocket, notice: serde_json::Value) {
    let _ = socket.send(Message::Text(notice.to_string().into())).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: close_code::POLICY,
            reason: EXPIRED.into(),
        })))
        .await;
}
