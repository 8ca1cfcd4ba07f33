//! Prompt media the engine plays: plain file names from the media directory, `http(s)` URLs
//! fetched under the outbound rule into a bounded cache of decoded audio, and text to speech
//! through espeak-ng.
//!
//! - A file is named by a plain name (no `/`, no `..`) and read from the media directory only;
//!   the resolved path must stay inside it (symbolic links included) and outside the
//!   recordings folder.
//! - A URL is fetched with connect and total time limits and a size limit; its addresses are
//!   resolved and checked by the [`OutboundPolicy`] and only checked addresses are connected
//!   to. Redirects are followed by hand (at most [`PromptSettings::max_redirects`]), each new
//!   URL checked again as if a tenant had written it.
//! - What is fetched is decoded before it is kept: a body that is not WAV, Ogg Opus or Ogg
//!   Vorbis audio is refused and never cached. The cache holds decoded 48 kHz samples, bounded
//!   in entries and bytes; the least recently used go first.
//! - Every failure is [`MediaError::Unplayable`] to the API, which says nothing of why; the
//!   reason (the file, the remote's answer) goes to the log.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tutti_conference::outbound::{media_reference, MediaReference, OutboundPolicy, Url};
use tutti_conference::MediaError;

/// How prompts are found, fetched and cached.
#[derive(Clone, Debug)]
pub struct PromptSettings {
    /// Where media files named by tenants live (only plain names inside it are played).
    pub media_dir: PathBuf,
    /// Where temporary files go (fetched bodies while they are decoded, synthesised speech).
    pub scratch_dir: PathBuf,
    /// The recordings folder, never played from even when it lies inside `media_dir`.
    pub recordings_dir: PathBuf,
    /// Which URLs may be fetched.
    pub outbound: OutboundPolicy,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest a whole fetch (redirects and body included) may take.
    pub timeout: Duration,
    /// Largest body fetched.
    pub max_bytes: u64,
    /// Redirects followed per fetch.
    pub max_redirects: u32,
    /// Decoded prompts kept.
    pub cache_entries: usize,
    /// Bytes of decoded audio kept (4 per sample: 192 000 a second).
    pub cache_bytes: usize,
}

impl PromptSettings {
    /// Defaults for a server whose media files are in `media_dir` and temporary files in
    /// `scratch_dir`: 5 s to connect, 15 s in all, 8 MiB, 3 redirects, 128 prompts or
    /// 128 MiB of decoded audio.
    pub fn new(media_dir: PathBuf, scratch_dir: PathBuf, recordings_dir: PathBuf) -> Self {
        Self {
            media_dir,
            scratch_dir,
            recordings_dir,
            outbound: OutboundPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            max_bytes: 8 * 1024 * 1024,
            max_redirects: 3,
            cache_entries: 128,
            cache_bytes: 128 * 1024 * 1024,
        }
    }
}

/// Where prompts come from.
#[derive(Debug)]
pub struct Prompts {
    settings: PromptSettings,
    agent: ureq::Agent,
    cache: Mutex<Cache>,
    /// The espeak-ng program, when installed.
    espeak: Option<PathBuf>,
}

fn unavailable(what: impl std::fmt::Display) -> MediaError {
    MediaError::Media(what.to_string())
}

impl Prompts {
    /// Prompts as `settings` say; looks for espeak-ng on the `PATH`.
    pub fn new(settings: PromptSettings) -> Self {
        let espeak = Command::new("espeak-ng")
            .arg("--version")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|_| PathBuf::from("espeak-ng"));
        let policy = settings.outbound.clone();
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(settings.connect_timeout)
            .timeout(settings.timeout)
            .redirects(0)
            .user_agent(concat!("tutti/", env!("CARGO_PKG_VERSION")))
            .resolver(move |netloc: &str| {
                let (host, port) = netloc
                    .rsplit_once(':')
                    .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
                    .ok_or_else(|| std::io::Error::other(format!("no port in {netloc}")))?;
                policy
                    .resolve(host, Some(port))
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e))
            })
            .build();
        let cache = Cache::new(settings.cache_entries, settings.cache_bytes);
        Self {
            settings,
            agent,
            cache: Mutex::new(cache),
            espeak,
        }
    }

    /// Whether text to speech is available.
    pub fn can_speak(&self) -> bool {
        self.espeak.is_some()
    }

    /// The decoded audio (48 kHz mono) of a media file name or URL. Any failure is
    /// [`MediaError::Unplayable`]; why is logged.
    pub fn clip(&self, media: &str) -> Result<Arc<[f32]>, MediaError> {
        let outcome = match media_reference(media, &self.settings.outbound) {
            Ok(MediaReference::File(name)) => self.file(&name),
            Ok(MediaReference::Url(url)) => self.url(url),
            Ok(MediaReference::Tone(_)) => Err(anyhow::anyhow!("a tone string is not a file")),
            Err(refused) => Err(refused.into()),
        };
        outcome.map_err(|error| {
            tracing::warn!(
                media,
                error = format!("{error:#}"),
                "media cannot be played"
            );
            MediaError::Unplayable
        })
    }

    /// A file of the media directory, by its plain name.
    fn file(&self, name: &str) -> anyhow::Result<Arc<[f32]>> {
        let dir = self.settings.media_dir.canonicalize().with_context(|| {
            format!("the media directory {}", self.settings.media_dir.display())
        })?;
        let path = dir
            .join(name)
            .canonicalize()
            .with_context(|| format!("{name} in {}", dir.display()))?;
        let recordings = self.settings.recordings_dir.canonicalize().ok();
        if !path.starts_with(&dir) || recordings.is_some_and(|r| path.starts_with(r)) {
            bail!("{} is outside the media directory", path.display());
        }
        if !path.is_file() {
            bail!("{} is not a file", path.display());
        }
        decode(&path)
    }

    /// A URL's audio, from the cache or fetched, decoded and cached.
    fn url(&self, url: Url) -> anyhow::Result<Arc<[f32]>> {
        let key = url.as_str().to_owned();
        if let Some(samples) = self.cache.lock().ok().and_then(|mut c| c.get(&key)) {
            return Ok(samples);
        }
        let body = self.fetch(url)?;
        std::fs::create_dir_all(&self.settings.scratch_dir)?;
        let scratch = self
            .settings
            .scratch_dir
            .join(format!("fetch-{}.partial", uuid::Uuid::new_v4().simple()));
        std::fs::write(&scratch, &body)
            .with_context(|| format!("writing {}", scratch.display()))?;
        let decoded = decode(&scratch);
        let _ = std::fs::remove_file(&scratch);
        let samples = decoded.context("the fetched body")?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, samples.clone());
        }
        Ok(samples)
    }

    /// GETs `url`, following redirects by hand so that each hop is checked, within the time
    /// and size limits; the body of the final `200`.
    fn fetch(&self, mut url: Url) -> anyhow::Result<Vec<u8>> {
        let deadline = Instant::now() + self.settings.timeout;
        for _ in 0..=self.settings.max_redirects {
            let left = deadline.saturating_duration_since(Instant::now());
            let response = match self.agent.get(url.as_str()).timeout(left).call() {
                Ok(response) => response,
                Err(ureq::Error::Status(status, _)) => bail!("{url} answered {status}"),
                Err(error) => bail!("fetching {url}: {error}"),
            };
            let status = response.status();
            if (300..400).contains(&status) {
                let location = response
                    .header("location")
                    .with_context(|| format!("{url} redirected ({status}) nowhere"))?;
                let next = url.join(location).context("a redirect's location")?;
                url = self
                    .settings
                    .outbound
                    .check_url(next.as_str())
                    .with_context(|| format!("{url} redirected to {next}"))?;
                continue;
            }
            if status != 200 {
                bail!("{url} answered {status}");
            }
            let max = self.settings.max_bytes;
            if let Some(length) = response
                .header("content-length")
                .and_then(|l| l.parse::<u64>().ok())
                .filter(|&l| l > max)
            {
                bail!("{url} is {length} bytes, more than {max}");
            }
            let mut body = Vec::new();
            response
                .into_reader()
                .take(max + 1)
                .read_to_end(&mut body)
                .with_context(|| format!("reading {url}"))?;
            if body.len() as u64 > max {
                bail!("{url} is more than {max} bytes");
            }
            return Ok(body);
        }
        bail!(
            "more than {} redirects from {url}",
            self.settings.max_redirects
        )
    }

    /// Synthesises `text` to a WAV file with espeak-ng (`language` such as `en-US`, `gender`
    /// `male`, `female` or `neutral`); the caller removes the file once it is decoded.
    pub fn speak(&self, text: &str, language: &str, gender: &str) -> Result<PathBuf, MediaError> {
        let program = self
            .espeak
            .as_ref()
            .ok_or_else(|| unavailable("no speech engine (espeak-ng) is installed"))?;
        let scratch = &self.settings.scratch_dir;
        std::fs::create_dir_all(scratch).map_err(unavailable)?;
        let path = scratch.join(format!("speech-{}.wav", uuid::Uuid::new_v4().simple()));
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

/// Decodes a prompt file; refuses one that holds no audio.
fn decode(path: &Path) -> anyhow::Result<Arc<[f32]>> {
    let samples = tutti_engine::wav::read_prompt(path)?;
    if samples.is_empty() {
        bail!("{} holds no audio", path.display());
    }
    Ok(samples.into())
}

fn has_audio(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 44)
}

/// Decoded prompts by URL, bounded in entries and bytes, least recently used evicted first.
#[derive(Debug)]
struct Cache {
    entries: HashMap<String, (Arc<[f32]>, u64)>,
    bytes: usize,
    clock: u64,
    max_entries: usize,
    max_bytes: usize,
}

fn size(samples: &[f32]) -> usize {
    std::mem::size_of_val(samples)
}

impl Cache {
    fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            entries: HashMap::new(),
            bytes: 0,
            clock: 0,
            max_entries,
            max_bytes,
        }
    }

    fn get(&mut self, key: &str) -> Option<Arc<[f32]>> {
        self.clock += 1;
        let (samples, used) = self.entries.get_mut(key)?;
        *used = self.clock;
        Some(samples.clone())
    }

    /// Keeps `samples` unless they alone exceed the byte bound; evicts the least recently
    /// used until both bounds hold.
    fn insert(&mut self, key: String, samples: Arc<[f32]>) {
        let bytes = size(&samples);
        if bytes > self.max_bytes || self.max_entries == 0 {
            return;
        }
        self.clock += 1;
        if let Some((old, _)) = self.entries.insert(key, (samples, self.clock)) {
            self.bytes -= size(&old);
        }
        self.bytes += bytes;
        while self.entries.len() > self.max_entries || self.bytes > self.max_bytes {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some((evicted, _)) = self.entries.remove(&oldest) {
                self.bytes -= size(&evicted);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests;
