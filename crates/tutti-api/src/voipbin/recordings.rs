//! `/v1.0/recordings`: the account's recordings, listed and downloaded by their owner only.

use axum::body::Body as ResponseBody;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tutti_conference::{RecordingStatus, ServiceError};

use super::{answer, authorize, page, page_size, render, QueryParams, VoipbinError};
use crate::request::request_id;
use crate::AppState;

fn recording_error(error: ServiceError) -> VoipbinError {
    VoipbinError::from_service("RECORDING", error)
}

/// `GET /v1.0/recordings`: newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
) -> Response {
    answer(state, headers, params, move |state, account, params| {
        let (rows, next) = state
            .service
            .recordings(account, params.page_token.as_deref(), page_size(params))
            .map_err(recording_error)?;
        Ok(page(rows.iter().map(render::recording).collect(), next))
    })
    .await
}

/// `GET /v1.0/recordings/{id}`.
pub(crate) async fn fetch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: QueryParams,
) -> Response {
    answer(state, headers, params, move |state, account, _| {
        let recording = state
            .service
            .recording(account, &id)
            .map_err(recording_error)?;
        Ok(render::recording(&recording))
    })
    .await
}

/// `GET /v1.0/recordings/{id}/file` (and `/v1.0/recordingfiles/{id}`): the WAV file, once
/// the recording has ended (409 while it is still being written).
pub(crate) async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: QueryParams,
) -> Response {
    let request_id = request_id(&headers);
    let found = tokio::task::spawn_blocking(move || {
        let params = params
            .map(|q| q.0)
            .map_err(|r| VoipbinError::InvalidArgument(r.body_text()))?;
        let account = authorize(&state, &headers, &params)?;
        let recording = state
            .service
            .recording(account, &id)
            .map_err(recording_error)?;
        if recording.status != RecordingStatus::Ended {
            return Err(VoipbinError::FailedPrecondition(
                "the recording is still being written".into(),
            ));
        }
        Ok(recording)
    })
    .await
    .unwrap_or(Err(VoipbinError::Internal));
    let recording = match found {
        Ok(recording) => recording,
        Err(error) => return error.into_response_with(&request_id),
    };
    match tokio::fs::File::open(&recording.path).await {
        Ok(file) => {
            let stream = tokio_util::io::ReaderStream::new(file);
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "audio/wav".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{}.wav\"", recording.id),
                    ),
                ],
                ResponseBody::from_stream(stream),
            )
                .into_response()
        }
        Err(error) => {
            tracing::warn!(%error, path = recording.path, "a recording's file is missing");
            VoipbinError::NotFound("RECORDING", recording.id.to_string())
                .into_response_with(&request_id)
        }
    }
}
