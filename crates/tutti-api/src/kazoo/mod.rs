//! The Kazoo face (`/v2`): Kazoo's envelopes, error shapes, status codes and pagination over
//! the conference service. See API-COMPAT.md §1.

mod auth;
mod conferences;
mod envelope;
mod participants;
mod sip;
mod time;
mod websocket;

use axum::routing::{get, put};
use axum::Router;

pub(crate) use envelope::error_page;

use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2/api_auth", put(auth::api_auth))
        .route("/v2/websocket", get(websocket::upgrade))
        .route(
            "/v2/accounts/{account_id}/sip",
            get(sip::fetch).put(sip::replace),
        )
        .route(
            "/v2/accounts/{account_id}/conferences",
            get(conferences::list).put(conferences::create),
        )
        .route(
            "/v2/accounts/{account_id}/conferences/{conference_id}",
            get(conferences::fetch)
                .post(conferences::replace)
                .patch(conferences::patch)
                .delete(conferences::delete)
                .put(participants::conference_action),
        )
        .route(
            "/v2/accounts/{account_id}/conferences/{conference_id}/participants",
            get(participants::list).put(participants::join_or_act),
        )
        .route(
            "/v2/accounts/{account_id}/conferences/{conference_id}/participants/{participant_id}",
            get(participants::fetch).put(participants::act),
        )
        .route_layer(axum::middleware::from_fn(
            |request: axum::extract::Request, next: axum::middleware::Next| {
                crate::request::own_errors(request, next, error_page)
            },
        ))
}
