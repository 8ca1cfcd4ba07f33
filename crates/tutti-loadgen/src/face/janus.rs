//! Janus AudioBridge.

use std::net::SocketAddr;

use tutti_codec::EncoderSettings;

use super::Face;
use crate::LoadError;

/// Room settings.
#[derive(Clone, Copy, Debug)]
pub struct JanusRoomSettings {
    /// Rate.
    pub sampling_rate: u32,
    /// Mix.
    pub mix: EncoderSettings,
}

/// Janus.
#[derive(Debug)]
pub struct Janus;

impl Janus {
    /// Connects.
    pub fn connect(_url: &str, _settings: JanusRoomSettings) -> Result<Self, LoadError> {
        Err(LoadError::Setting("todo".into()))
    }
}

impl Face for Janus {
    fn create_room(&self, _index: usize) -> Result<String, LoadError> {
        Err(LoadError::Setting("todo".into()))
    }
    fn join(&self, _room: &str, _local: SocketAddr, _name: &str) -> Result<SocketAddr, LoadError> {
        Err(LoadError::Setting("todo".into()))
    }
    fn close_room(&self, _room: &str) -> Result<(), LoadError> {
        Ok(())
    }
}
