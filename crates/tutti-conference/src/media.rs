//! What the domain needs from the media plane, as a trait it owns: the engine is adapted to it
//! by the server, and tests substitute their own.

/// The media plane as the conference service sees it.
pub trait MediaPlane: Send + Sync {
    /// Checks that a tone string can be played; the error says what is wrong with it.
    fn check_tone(&self, tone: &str) -> Result<(), String>;
}
