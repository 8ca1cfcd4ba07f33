//! Prompt media the engine plays from files: media URLs fetched into a local cache, and text
//! to speech through espeak-ng.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tutti_conference::MediaError;

/// Largest prompt file fetched from a URL.
pub const MAX_PROMPT_BYTES: u64 = 32 * 1024 * 1024;
/// How long fetching a prompt may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);

/// Where prompts come from.
#[derive(Debug)]
pub struct Prompts {
    /// Fetched and synthesised files.
    cache: PathBuf,
    /// The espeak-ng program, when installed.
    espeak: Option<PathBuf>,
}

fn unavailable(what: impl std::fmt::Display) -> MediaError {
    MediaError::Media(what.to_string())
}

impl Prompts {
    /// Prompts cached under `cache`; looks for espeak-ng on the `PATH`.
    pub fn new(cache: PathBuf) -> Self {
        let espeak = Command::new("espeak-ng")
            .arg("--version")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|_| PathBuf::from("espeak-ng"));
        Self { cache, espeak }
    }

    /// Whether text to speech is available.
    pub fn can_speak(&self) -> bool {
        self.espeak.is_some()
    }

    /// The local file for a media reference: `file://` paths and plain paths as they are,
    /// `http://` and `https://` URLs fetched (once) into the cache.
    pub fn local_file(&self, media: &str) -> Result<PathBuf, MediaError> {
        if !(media.starts_with("http://") || media.starts_with("https://")) {
            return Ok(PathBuf::from(
                media.strip_prefix("file://").unwrap_or(media),
            ));
        }
        let name: String = Sha256::digest(media.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let path = self.cache.join(format!("url-{name}"));
        if path.exists() {
            return Ok(path);
        }
        std::fs::create_dir_all(&self.cache).map_err(unavailable)?;
        let agent = ureq::AgentBuilder::new().timeout(FETCH_TIMEOUT).build();
        let response = agent
            .get(media)
            .call()
            .map_err(|e| unavailable(format!("fetching {media}: {e}")))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(response.into_reader(), MAX_PROMPT_BYTES + 1),
            &mut bytes,
        )
        .map_err(|e| unavailable(format!("fetching {media}: {e}")))?;
        if bytes.len() as u64 > MAX_PROMPT_BYTES {
            return Err(unavailable(format!(
                "{media} is larger than {MAX_PROMPT_BYTES} bytes"
            )));
        }
        let partial = path.with_extension("partial");
        std::fs::write(&partial, &bytes).map_err(unavailable)?;
        std::fs::rename(&partial, &path).map_err(unavailable)?;
        Ok(path)
    }

    /// Synthesises `text` to a WAV file with espeak-ng (`language` such as `en-US`, `gender`
    /// `male`, `female` or `neutral`); the caller removes the file once it is decoded.
    pub fn speak(&self, text: &str, language: &str, gender: &str) -> Result<PathBuf, MediaError> {
        let program = self
            .espeak
            .as_ref()
            .ok_or_else(|| unavailable("no speech engine (espeak-ng) is installed"))?;
        std::fs::create_dir_all(&self.cache).map_err(unavailable)?;
        let path = self
            .cache
            .join(format!("speech-{}.wav", uuid::Uuid::new_v4().simple()));
        let variant = match gender {
            "male" => "+m3",
            "female" => "+f3",
            _ => "",
        };
        let language = language.to_ascii_lowercase();
        for voice in [format!("{language}{variant}"), format!("en{variant}")] {
            let status = Command::new(program)
                .arg("-v")
                .arg(&voice)
                .arg("-w")
                .arg(&path)
                .arg("--")
                .arg(text)
                .output()
                .map_err(unavailable)?;
            if status.status.success() && has_audio(&path) {
                return Ok(path);
            }
        }
        Err(unavailable(format!(
            "espeak-ng could not speak in {language}"
        )))
    }
}

fn has_audio(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 44)
}
