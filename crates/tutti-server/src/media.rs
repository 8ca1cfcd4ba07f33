//! The media engine adapted to the conference service's `MediaPlane`.

use std::sync::Arc;
use std::time::Duration;

use tutti_conference::{
    ConferenceService, Departure, Digit, JoinSpec, JoinedMedia, MediaError, MediaEvent,
    MediaEventKind, MediaMetrics, MediaPlane, OfferedMedia, ParticipantState, ParticipantUpdate,
    RoomSpec, RoomState,
};
use tutti_engine::tutti_mix::{ParticipantSettings, ToneProgram};
use tutti_engine::{
    ClipPlayer, Engine, EngineError, EngineEvent, JoinRequest, LeaveReason, ParticipantChange,
    RoomId, RoomSettings, RoomSound,
};
use tutti_webrtc::{WebRtcEndpoint, WebRtcError};
use uuid::Uuid;

/// The engine behind the conference service.
pub struct EngineMedia {
    /// The engine; `None` where no media runs (account administration).
    pub engine: Option<Arc<Engine>>,
    /// The WebRTC endpoint browsers join through; `None` when `[webrtc]` is disabled.
    pub webrtc: Option<WebRtcEndpoint>,
    /// The STUN/TURN servers browsers are told to use (`[webrtc] ice_servers`), as JSON.
    pub ice_servers: serde_json::Value,
    /// Where recordings are written, one folder per conference.
    pub recordings: std::path::PathBuf,
    /// Media files, fetched prompts and text to speech.
    pub prompts: crate::prompts::Prompts,
    /// Recordings being written, by room, and the files the engine has finished.
    pub recorders: Recorders,
    /// The cluster this node belongs to: a room starts here only once placed here.
    pub cluster: std::sync::OnceLock<tutti_cluster::Cluster>,
}

/// Which recording each room writes, and which files are complete: stopping a recording
/// waits for its file to be closed, so a stopped recording can be downloaded at once.
#[derive(Debug, Default)]
pub struct Recorders {
    active: std::sync::Mutex<std::collections::HashMap<Uuid, std::path::PathBuf>>,
    finished: std::sync::Mutex<std::collections::HashSet<std::path::PathBuf>>,
    closed: std::sync::Condvar,
}

/// Longest wait for a stopped recording's file to be closed.
const RECORDING_CLOSE_WAIT: Duration = Duration::from_secs(10);

impl Recorders {
    fn started(&self, room: Uuid, path: std::path::PathBuf) {
        if let Ok(mut active) = self.active.lock() {
            active.insert(room, path);
        }
    }

    /// The engine closed `path`.
    pub fn finished(&self, path: std::path::PathBuf) {
        if let Ok(mut finished) = self.finished.lock() {
            finished.insert(path);
            self.closed.notify_all();
        }
    }

    /// Waits until the room's recording file is closed (it was told to stop).
    fn wait_closed(&self, room: Uuid) {
        let Some(path) = self.active.lock().ok().and_then(|mut a| a.remove(&room)) else {
            return;
        };
        let Ok(finished) = self.finished.lock() else {
            return;
        };
        let waited = self
            .closed
            .wait_timeout_while(finished, RECORDING_CLOSE_WAIT, |f| !f.contains(&path));
        if let Ok((mut finished, timeout)) = waited {
            if timeout.timed_out() {
                tracing::warn!(path = %path.display(), "a recording's file was not closed in time");
            }
            finished.remove(&path);
        }
    }
}

fn room(id: Uuid) -> RoomId {
    RoomId(id.as_u128())
}

fn check_tone(tone: &str) -> Result<(), String> {
    ToneProgram::parse(tone)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn media_error(error: EngineError) -> MediaError {
    match error {
        EngineError::Sdp(e) => MediaError::Offer(e.to_string()),
        EngineError::AddressFamily { .. } | EngineError::UnsupportedCodec(_) => {
            MediaError::Offer(error.to_string())
        }
        EngineError::RoomFull { max, .. } => MediaError::Full(max),
        EngineError::RoomLocked(_) => MediaError::Locked,
        EngineError::Tone(e) => MediaError::Media(e.to_string()),
        // These name files on the server: the log may say so, an API answer may not.
        EngineError::Wav { .. }
        | EngineError::UnsupportedWav { .. }
        | EngineError::ReadPrompt { .. }
        | EngineError::Ogg { .. }
        | EngineError::Vorbis { .. }
        | EngineError::PromptDecode { .. }
        | EngineError::UnsupportedPrompt { .. } => {
            tracing::warn!(%error, "a prompt cannot be played");
            MediaError::Unplayable
        }
        EngineError::UnknownParticipant { participant, .. } => {
            MediaError::NoParticipant(participant)
        }
        other => MediaError::Unavailable(other.to_string()),
    }
}

fn webrtc_error(error: WebRtcError) -> MediaError {
    match error {
        WebRtcError::Engine(error) => media_error(error),
        WebRtcError::UnknownParticipant { participant, .. } => {
            MediaError::NoParticipant(participant)
        }
        WebRtcError::Bind { .. } | WebRtcError::Certificate(_) | WebRtcError::Stopped(_) => {
            MediaError::Unavailable(error.to_string())
        }
        // What is wrong with the offer or fragment, in words for the one who sent it.
        other => MediaError::Offer(other.to_string()),
    }
}

impl EngineMedia {
    fn engine(&self) -> Result<&Engine, MediaError> {
        self.engine
            .as_deref()
            .ok_or_else(|| MediaError::Unavailable("no media engine in this process".into()))
    }

    /// A room's settings from its spec: entry and exit tones are tone strings, media files or
    /// URLs (media that cannot be played plays nothing; the log says why).
    fn room_settings(&self, spec: &RoomSpec) -> RoomSettings {
        let sound = |which: &str, media: &Option<String>| {
            let media = media.as_deref()?;
            if media.starts_with("tone_stream://") {
                return ToneProgram::parse(media).ok().map(RoomSound::Tone);
            }
            match self.prompts.clip(media) {
                Ok(samples) => Some(RoomSound::Clip(samples)),
                Err(_) => {
                    tracing::warn!(media, "the {which} tone cannot be played");
                    None
                }
            }
        };
        RoomSettings {
            max_participants: spec.max_participants,
            entry_sound: sound("entry", &spec.entry_tone),
            exit_sound: sound("exit", &spec.exit_tone),
            ..RoomSettings::default()
        }
    }
}

impl MediaPlane for EngineMedia {
    fn check_tone(&self, tone: &str) -> Result<(), String> {
        check_tone(tone)
    }

    fn ensure_room(&self, id: Uuid, spec: &RoomSpec) -> Result<(), MediaError> {
        let engine = self.engine()?;
        if let Some(cluster) = self.cluster.get().filter(|_| spec.conference) {
            match cluster.claim(id) {
                Ok(tutti_cluster::Claim::Here) => {}
                Ok(tutti_cluster::Claim::Elsewhere(node)) => {
                    return Err(MediaError::Unavailable(format!(
                        "the conference's room runs on node {}",
                        node.id
                    )))
                }
                Err(error) => {
                    return Err(MediaError::Unavailable(format!(
                        "the cluster cannot place the room: {error}"
                    )))
                }
            }
        }
        match engine.create_room(room(id), self.room_settings(spec)) {
            Ok(()) | Err(EngineError::RoomExists(_)) => Ok(()),
            Err(e) => Err(media_error(e)),
        }
    }

    fn end_room(&self, id: Uuid) {
        if let Ok(engine) = self.engine() {
            let _ = engine.destroy_room(room(id));
        }
        // A conference's room placed here (a lobby was never placed).
        if let Some(cluster) = self.cluster.get() {
            if cluster.focus(id).as_deref() == Some(cluster.node()) {
                cluster.release(id);
            }
        }
    }

    fn join(&self, id: Uuid, spec: &JoinSpec) -> Result<JoinedMedia, MediaError> {
        let settings = ParticipantSettings {
            speak: !spec.muted,
            hear: !spec.deaf,
            energy_level: spec.energy_level,
            moderator: spec.moderator,
            ..ParticipantSettings::default()
        };
        if WebRtcEndpoint::is_webrtc_offer(&spec.offer) {
            let webrtc = self.webrtc.as_ref().ok_or_else(|| {
                MediaError::Offer("WebRTC offers are not taken here ([webrtc] is disabled)".into())
            })?;
            let joined = webrtc
                .join(room(id), &spec.offer, settings)
                .map_err(webrtc_error)?;
            return Ok(JoinedMedia {
                participant_id: joined.participant,
                answer: joined.answer,
                port: webrtc.local_port(),
            });
        }
        let joined = self
            .engine()?
            .join(
                room(id),
                JoinRequest {
                    offer: spec.offer.clone(),
                    settings,
                    latching: spec.latching,
                    signalled_source: spec.signalled_source,
                    port: spec.port,
                    relay: None,
                },
            )
            .map_err(media_error)?;
        Ok(JoinedMedia {
            participant_id: joined.key,
            answer: joined.answer,
            port: joined.port,
        })
    }

    fn patch_ice(
        &self,
        id: Uuid,
        participant: u32,
        sdpfrag: &str,
    ) -> Result<Option<String>, MediaError> {
        self.webrtc
            .as_ref()
            .ok_or_else(|| MediaError::Unavailable("[webrtc] is disabled".into()))?
            .patch(room(id), participant, sdpfrag)
            .map_err(webrtc_error)
    }

    fn ice_servers(&self) -> serde_json::Value {
        self.ice_servers.clone()
    }

    fn renegotiate(&self, id: Uuid, participant: u32, offer: &str) -> Result<String, MediaError> {
        self.engine()?
            .renegotiate(room(id), participant, offer)
            .map_err(media_error)
    }

    fn offer(&self) -> Result<OfferedMedia, MediaError> {
        let (offer, port) = self.engine()?.offer().map_err(media_error)?;
        Ok(OfferedMedia { offer, port })
    }

    fn detach(&self, id: Uuid, participant: u32) -> Result<u16, MediaError> {
        self.engine()?
            .detach(room(id), participant)
            .map_err(media_error)
    }

    fn release_port(&self, port: u16) {
        if let Ok(engine) = self.engine() {
            engine.release_port(port);
        }
    }

    fn kick(&self, id: Uuid, participant: u32) -> Result<(), MediaError> {
        self.engine()?
            .leave(room(id), participant)
            .map_err(media_error)
    }

    fn kick_many(&self, id: Uuid, participants: &[u32]) -> Result<(), MediaError> {
        self.engine()?
            .leave_many(room(id), participants)
            .map_err(media_error)
    }

    fn update_room(&self, id: Uuid, spec: &RoomSpec) -> Result<(), MediaError> {
        self.engine()?
            .set_room_settings(room(id), self.room_settings(spec))
            .map_err(media_error)
    }

    fn relate(&self, id: Uuid, listener: u32, speaker: u32, hears: bool) -> Result<(), MediaError> {
        self.engine()?
            .relate(room(id), listener, speaker, hears)
            .map_err(media_error)
    }

    fn can_speak(&self) -> bool {
        self.prompts.can_speak()
    }

    fn speak(
        &self,
        id: Uuid,
        participant: Option<u32>,
        text: &str,
        language: &str,
        gender: &str,
    ) -> Result<Duration, MediaError> {
        let path = self.prompts.speak(text, language, gender)?;
        let played = self.engine().and_then(|engine| {
            engine
                .play_wav(room(id), participant, &path)
                .map_err(media_error)
        });
        let _ = std::fs::remove_file(&path);
        played
    }

    fn update(
        &self,
        id: Uuid,
        participant: Option<u32>,
        update: ParticipantUpdate,
        skip_moderators: bool,
    ) -> Result<(), MediaError> {
        let change = match update {
            ParticipantUpdate::Speak(v) => ParticipantChange::Speak(v),
            ParticipantUpdate::Hear(v) => ParticipantChange::Hear(v),
        };
        let engine = self.engine()?;
        match participant {
            Some(key) => engine.update(room(id), key, change),
            None => engine.update_all(room(id), change, skip_moderators),
        }
        .map_err(media_error)
    }

    fn set_locked(&self, id: Uuid, locked: bool) -> Result<(), MediaError> {
        self.engine()?
            .set_locked(room(id), locked)
            .map_err(media_error)
    }

    fn play(
        &self,
        id: Uuid,
        participant: Option<u32>,
        media: &str,
    ) -> Result<Duration, MediaError> {
        let engine = self.engine()?;
        if media.starts_with("tone_stream://") {
            return engine
                .play_tone(room(id), participant, media)
                .map_err(media_error);
        }
        let player = ClipPlayer::new(self.prompts.clip(media)?);
        let length = player.duration();
        engine
            .play(room(id), participant, Box::new(player))
            .map_err(media_error)?;
        Ok(length)
    }

    fn metrics(&self) -> MediaMetrics {
        let Some(engine) = &self.engine else {
            return MediaMetrics::default();
        };
        let m = engine.metrics();
        let bounds = tutti_engine::histogram::BUCKET_BOUNDS_US;
        let mut buckets = vec![0u64; bounds.len() + 1];
        let (mut sum_us, mut ticks) = (0u64, 0u64);
        for histogram in &m.tick_duration {
            for (total, count) in buckets.iter_mut().zip(&histogram.buckets) {
                *total += count;
            }
            sum_us += histogram.sum_us;
            ticks += histogram.count;
        }
        // Prometheus buckets are cumulative.
        let mut running = 0;
        for bucket in &mut buckets {
            running += *bucket;
            *bucket = running;
        }
        MediaMetrics {
            rooms: m.rooms.iter().sum::<usize>() as u64,
            participants: m.participants.iter().sum::<usize>() as u64,
            room_participants: m
                .room_participants
                .iter()
                .map(|&(room, count)| (Uuid::from_u128(room.0), count as u64))
                .collect(),
            tick_bucket_bounds: bounds.iter().map(|&us| us as f64 / 1e6).collect(),
            tick_buckets: buckets,
            tick_seconds_sum: sum_us as f64 / 1e6,
            ticks,
            tick_overruns: m.overruns,
            rtp_packets_in: m.packets_in,
            rtp_packets_out: m.packets_out,
            rtp_packets_lost: m.packets_lost,
            rtp_dropped: m
                .drops
                .iter()
                .map(|(reason, count)| (reason.as_str(), *count))
                .collect(),
            packets_decoded: m.decoded,
            packets_decode_skipped: m.decode_skipped,
        }
    }

    fn start_recording(&self, id: Uuid, max: Option<Duration>) -> Result<String, MediaError> {
        let folder = self.recordings.join(id.simple().to_string());
        // Where recordings live is the server's business: the log names it, answers do not.
        let no_file = |error: &dyn std::fmt::Display| {
            tracing::error!(%error, folder = %folder.display(), "a recording's file cannot be created");
            MediaError::Unavailable("the recording's file cannot be created".into())
        };
        std::fs::create_dir_all(&folder).map_err(|e| no_file(&e))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let path = folder.join(format!("{stamp}.wav"));
        self.engine()?
            .start_recording(room(id), path.clone(), max)
            .map_err(|error| match error {
                EngineError::Wav { .. } => no_file(&error),
                other => media_error(other),
            })?;
        self.recorders.started(id, path.clone());
        Ok(path.display().to_string())
    }

    fn stop_recording(&self, id: Uuid) -> Result<(), MediaError> {
        // A recording that reached its maximum length has stopped already: only the wait
        // for its file remains.
        let _ = self.engine()?.stop_recording(room(id));
        self.recorders.wait_closed(id);
        Ok(())
    }

    fn room_state(&self, id: Uuid) -> Option<RoomState> {
        let snapshot = self.engine.as_ref()?.snapshot(room(id))?;
        Some(RoomState {
            locked: snapshot.locked,
            participants: snapshot
                .participants
                .iter()
                .map(|p| ParticipantState {
                    participant_id: p.key,
                    talking: p.talking,
                    mute_detect: p.mute_detect,
                    current_energy: p.current_energy,
                    energy_level: p.energy_level,
                    speak: p.speak,
                    hear: p.hear,
                    moderator: p.moderator,
                })
                .collect(),
        })
    }
}

/// The conference service's name for why the engine let a participant go.
fn departure(reason: LeaveReason) -> Departure {
    match reason {
        LeaveReason::Kicked => Departure::Kicked,
        LeaveReason::RtpTimeout => Departure::Timeout,
        LeaveReason::RoomDestroyed => Departure::ConferenceEnded,
        LeaveReason::Shutdown => Departure::Shutdown,
    }
}

/// Feeds the engine's events to the conference service on a thread of their own, until the
/// engine stops.
///
/// Two threads: one reads the engine's events and marks finished recordings at once; the
/// other hands participant events to the service in order. The service may wait for a
/// recording's file (a room that stops with its last participant finishes its recording),
/// which the first thread reports while the second waits.
pub fn pump_events(
    events: crossbeam_channel::Receiver<EngineEvent>,
    service: Arc<ConferenceService>,
    media: Arc<EngineMedia>,
) -> std::io::Result<()> {
    let (to_service, for_service) = crossbeam_channel::bounded(65_536);
    std::thread::Builder::new()
        .name("tutti-events".into())
        .spawn(move || {
            for event in events.iter() {
                match event {
                    EngineEvent::RecordingFinished { path, .. } => media.recorders.finished(path),
                    other => {
                        if to_service.send(other).is_err() {
                            return;
                        }
                    }
                }
            }
        })?;
    std::thread::Builder::new()
        .name("tutti-service-events".into())
        .spawn(move || {
            for event in for_service.iter() {
                let (room, participant, kind) = match event {
                    EngineEvent::StartTalking { room, participant } => {
                        (room, participant, MediaEventKind::StartTalking)
                    }
                    EngineEvent::StopTalking { room, participant } => {
                        (room, participant, MediaEventKind::StopTalking)
                    }
                    EngineEvent::Left {
                        room,
                        participant,
                        reason,
                        counters,
                    } => {
                        tracing::info!(
                            conference = %Uuid::from_u128(room.0),
                            participant,
                            reason = reason.as_str(),
                            packets_in = counters.packets_in,
                            packets_out = counters.packets_out,
                            dropped_foreign_source = counters.foreign_source,
                            dropped_malformed = counters.malformed,
                            dropped_unexpected_payload_type = counters.unexpected_payload_type,
                            dropped_overflow = counters.overflow,
                            unsent_unproven = counters.unproven_suppressed,
                            "participant's media closed"
                        );
                        (room, participant, MediaEventKind::Left(departure(reason)))
                    }
                    EngineEvent::Dtmf {
                        room,
                        participant,
                        digit,
                        duration,
                    } => (
                        room,
                        participant,
                        MediaEventKind::Dtmf(Digit {
                            digit,
                            duration_ms: duration.as_millis().min(u128::from(u32::MAX)) as u32,
                        }),
                    ),
                    EngineEvent::Latched {
                        room,
                        participant,
                        source,
                    } => {
                        tracing::info!(
                            conference = %Uuid::from_u128(room.0),
                            participant,
                            %source,
                            "participant's media latched"
                        );
                        continue;
                    }
                    EngineEvent::TickOverrun { thread, late_by } => {
                        tracing::warn!(
                            thread,
                            late_ms = late_by.as_millis() as u64,
                            "mixer tick overran"
                        );
                        continue;
                    }
                    _ => continue,
                };
                service.on_media_event(&MediaEvent {
                    conference: Uuid::from_u128(room.0),
                    participant_id: participant,
                    kind,
                });
            }
        })?;
    Ok(())
}

#[cfg(test)]
#[path = "media_tests.rs"]
mod tests;
