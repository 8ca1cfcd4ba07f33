//! A new offer within a running call (a SIP re-INVITE or UPDATE): hold, resume, a new
//! address, a new codec. The participant keeps its port, its place in the room, its settings
//! and its RTP stream (SSRC, sequence, timestamps); the new leg is built here, off the mixer
//! thread, and swapped in by a command.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tutti_rtp::rtcp::{NtpClock, RtcpSession};
use tutti_rtp::sdp::answer_reoffer;

use super::Engine;
use crate::leg::{CallLeg, Transport};
use crate::mixer::Command;
use crate::receiver::ReceiverCommand;
use crate::{EngineError, ParticipantKey, RoomId};

impl Engine {
    /// Answers a new offer from a participant in `room`. The answer keeps the session id of
    /// the SDP tutti sent before, with the next version (RFC 3264 §8). `sendonly` is answered
    /// `recvonly` and `inactive` or `c=0.0.0.0` `inactive`: nothing is sent to a call on hold,
    /// and it is not timed out; `sendrecv` resumes. A new address or port is where media goes,
    /// and the only source accepted, from now on. An offer tutti cannot take (no common codec,
    /// the other address family) is refused and the call keeps its media as it was.
    pub fn renegotiate(
        &self,
        room: RoomId,
        key: ParticipantKey,
        offer: &str,
    ) -> Result<String, EngineError> {
        let thread = self.room_thread(room)?;
        let unknown = || EngineError::UnknownParticipant {
            room,
            participant: key,
        };
        let (reply, state) = crossbeam_channel::bounded(1);
        self.send(thread, Command::LegState { room, key, reply })?;
        let state = state
            .recv_timeout(Duration::from_secs(2))
            .map_err(|_| EngineError::Stopped)?
            .ok_or_else(unknown)?;
        let Transport::Udp(socket) = &state.transport else {
            return Err(EngineError::Relayed {
                room,
                participant: key,
            });
        };
        let port = socket.local_addr()?.port();
        let version = state.session_version.wrapping_add(1);
        let negotiated =
            answer_reoffer(offer, &self.answer_config(port, state.session_id), version)?;
        let parts = self.leg_parts(
            negotiated,
            state.latching,
            state.signalled_source,
            state.session_id,
            version,
        )?;
        let answer = parts.media.negotiated.answer.clone();
        let now = Instant::now();
        // Replaced by the running call's statistics when the leg takes over.
        let rtcp = RtcpSession::new(
            state.ssrc,
            String::new(),
            NtpClock::new(now, SystemTime::now()),
        );
        let leg = CallLeg::new(
            Transport::Udp(Arc::clone(socket)),
            Arc::clone(&state.inbox),
            parts.media,
            parts.decoder,
            parts.encoder,
            rtcp,
            state.ssrc,
            now,
        );
        let (reply, swapped) = crossbeam_channel::bounded(1);
        self.send(
            thread,
            Command::Renegotiate {
                room,
                key,
                leg: Box::new(leg),
                shared_encoder: parts.shared_encoder,
                reply,
            },
        )?;
        swapped
            .recv_timeout(Duration::from_secs(2))
            .map_err(|_| EngineError::Stopped)??;
        let receiver = &self.threads[thread].receiver;
        let _ = receiver
            .commands
            .send(ReceiverCommand::SetGuard(state.token, parts.guard));
        let _ = receiver.waker.wake();
        Ok(answer)
    }
}
