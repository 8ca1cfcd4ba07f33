//! Participants as the mixer sees them: settings the control plane changes between ticks, and
//! the realtime status each tick leaves behind.

use crate::limiter::Limiter;
use crate::talk::TalkDetector;

/// Handle of a participant in one [`Room`](crate::Room). Stale handles (of a participant that
/// left) are recognised and refused, even when the slot has been reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl ParticipantId {
    /// Position of the participant's slot in the room; stable while it stays.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// What the control plane decides about a participant. Every field may change between ticks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParticipantSettings {
    /// May speak: when false (muted) the participant contributes nothing to the mix.
    pub speak: bool,
    /// May hear the room: when false (deaf) nothing of the room is mixed for the participant.
    /// Sources addressed to it alone ([`SourceTarget::Listener`](crate::SourceTarget)) still
    /// reach it, as a file played to a deaf FreeSWITCH member does; without one it receives
    /// silence.
    pub hear: bool,
    /// Linear gain applied to the participant's audio before measuring and mixing (1.0 = as is).
    pub input_gain: f32,
    /// Linear gain applied to what the participant hears (1.0 = as is).
    pub output_volume: f32,
    /// Talk threshold on the 16-bit mean-amplitude scale (Kazoo default 20, FreeSWITCH 300).
    /// 0 treats any non-silent frame as speech.
    pub energy_level: f32,
    /// Moderators keep their place among the loudest-K contributors when a room caps them.
    pub moderator: bool,
}

impl Default for ParticipantSettings {
    fn default() -> Self {
        Self {
            speak: true,
            hear: true,
            input_gain: 1.0,
            output_volume: 1.0,
            energy_level: 20.0,
            moderator: false,
        }
    }
}

/// Largest input gain or output volume the mixer applies (+24 dB).
pub const MAX_GAIN: f32 = 16.0;

/// A gain safe to multiply with: NaN and negatives become 0, the top is [`MAX_GAIN`].
pub(crate) fn sane_gain(gain: f32) -> f32 {
    if gain.is_nan() {
        0.0
    } else {
        gain.clamp(0.0, MAX_GAIN)
    }
}

/// A threshold safe to compare with: NaN and negatives become 0.
pub(crate) fn sane_level(level: f32) -> f32 {
    if level.is_nan() {
        0.0
    } else {
        level.max(0.0)
    }
}

/// Realtime state of a participant after the last tick, cheap to copy into a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ParticipantStatus {
    /// Energy of the last frame on the 16-bit scale (0 when nothing arrived).
    pub current_energy: f32,
    /// Talking: voice activity while allowed to speak.
    pub talking: bool,
    /// Voice activity while muted.
    pub mute_detect: bool,
    /// The last frame was mixed into the room.
    pub contributing: bool,
    /// A frame arrived for the last tick (false: it was treated as silence).
    pub had_input: bool,
}

/// A participant's buffers outside any room: built before it joins, so that adding it to a
/// room allocates nothing ([`Room::attach_participant`](crate::Room::attach_participant)), and
/// handed back when it leaves, so that they are freed wherever the caller chooses
/// ([`Room::detach_participant`](crate::Room::detach_participant)).
#[derive(Debug)]
pub struct DetachedParticipant(pub(crate) Participant);

impl DetachedParticipant {
    /// A new participant with `settings`; allocates its buffers.
    pub fn new(settings: ParticipantSettings) -> Self {
        Self(Participant::new(settings))
    }
}

/// Everything the room keeps per participant. Buffers are allocated once, when it joins.
#[derive(Debug)]
pub(crate) struct Participant {
    pub(crate) settings: ParticipantSettings,
    pub(crate) status: ParticipantStatus,
    pub(crate) detector: TalkDetector,
    pub(crate) limiter: Limiter,
    /// Smoothed energy used to rank contributors when the room caps them.
    pub(crate) smoothed_energy: f32,
    /// Was among the selected contributors last tick (gives it the hysteresis bonus).
    pub(crate) selected: bool,
    /// A frame was written for the coming tick.
    pub(crate) input_ready: bool,
    /// Private sources address this listener this tick.
    pub(crate) private_sources: u16,
    /// The frame the engine writes for the coming tick.
    pub(crate) input: Box<crate::Frame>,
    /// First the participant's own cleaned and scaled signal, then what it hears.
    pub(crate) output: Box<crate::Frame>,
    /// Speakers this listener does not hear ([`Room::set_hears`](crate::Room::set_hears));
    /// empty for nearly everyone.
    pub(crate) not_heard: Vec<ParticipantId>,
    /// Where the listener's own mix is built while `output` still holds its signal, when some
    /// speaker it does not hear contributes. Allocated with its first relation.
    pub(crate) related: Option<Box<crate::Frame>>,
    /// This tick the listener hears the mix built in `related`.
    pub(crate) related_mix: bool,
    /// Contributors left out of that mix this tick (the listener itself included).
    pub(crate) hidden_contributors: u32,
}

impl Participant {
    pub(crate) fn new(settings: ParticipantSettings) -> Self {
        Self {
            settings,
            status: ParticipantStatus::default(),
            detector: TalkDetector::default(),
            limiter: Limiter::default(),
            smoothed_energy: 0.0,
            selected: false,
            input_ready: false,
            private_sources: 0,
            input: Box::new(crate::Frame::silent()),
            output: Box::new(crate::Frame::silent()),
            not_heard: Vec::new(),
            related: None,
            related_mix: false,
            hidden_contributors: 0,
        }
    }
}
