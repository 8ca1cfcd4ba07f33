//! VoIPbin's `pre_actions` and `post_actions`: short scripts played to one caller before it
//! joins or as it leaves — `play` media files or URLs, `talk` (text to speech), `sleep`,
//! `hangup`. Scripts run on their own threads (they mostly wait), never on the mixer's.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::service::{Conference, ConferenceService};

/// How often a running script checks that its caller is still there.
const PRESENCE_CHECK: Duration = Duration::from_millis(50);

/// How a script ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScriptEnd {
    /// Every action ran.
    Completed,
    /// A `hangup` action ended the call.
    HungUp,
    /// The caller left (or was removed) while it ran.
    Gone,
}

/// Runs `work` (a call's script: it mostly waits) on a thread of its own, never on the tokio
/// runtime's blocking pool: the API's handlers run there, and one tenant's long scripts (many
/// calls, each sleeping through its actions) must not take every thread of it.
pub(crate) fn spawn(work: impl FnOnce() + Send + 'static) {
    let started = std::thread::Builder::new()
        .name("tutti-script".into())
        .stack_size(SCRIPT_STACK)
        .spawn(work);
    if let Err(error) = started {
        tracing::warn!(%error, "a call's script could not be started");
    }
}

/// Stack of a script thread: scripts call into the service and the media plane, nothing deep.
const SCRIPT_STACK: usize = 512 * 1024;

/// Runs `work` after `delay`, off the caller's thread (waiting on a timer, not a thread, when
/// there is a tokio runtime).
pub(crate) fn spawn_after(delay: Duration, work: impl FnOnce() + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = tokio::task::spawn_blocking(work).await;
            });
        }
        Err(_) => {
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                work();
            });
        }
    }
}

impl ConferenceService {
    /// Plays `actions` to one participant, waiting for each to finish.
    pub(crate) fn run_actions(
        &self,
        conference: &Conference,
        participant_id: u32,
        actions: &[Value],
    ) -> ScriptEnd {
        let media = self.media();
        for action in actions {
            if !self.is_present(conference.id, participant_id) {
                return ScriptEnd::Gone;
            }
            let option = action.get("option").cloned().unwrap_or(Value::Null);
            let text = |key: &str, default: &'static str| {
                option
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or(default)
                    .to_owned()
            };
            let wait = match action.get("type").and_then(Value::as_str) {
                Some("hangup") => return ScriptEnd::HungUp,
                Some("sleep") => Duration::from_millis(
                    option.get("duration").and_then(Value::as_u64).unwrap_or(0),
                ),
                Some("talk") => media
                    .speak(
                        conference.id,
                        Some(participant_id),
                        &text("text", ""),
                        &text("language", "en-US"),
                        &text("gender", "female"),
                    )
                    .unwrap_or_else(|error| {
                        tracing::warn!(%error, conference = %conference.id, "a talk action failed");
                        Duration::ZERO
                    }),
                Some("play") => {
                    let urls = option
                        .get("stream_urls")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    let mut end = ScriptEnd::Completed;
                    for url in urls.iter().filter_map(Value::as_str) {
                        match media.play(conference.id, Some(participant_id), url) {
                            Ok(length) => end = self.wait(conference.id, participant_id, length),
                            Err(error) => {
                                tracing::warn!(%error, url, conference = %conference.id, "a play action failed")
                            }
                        }
                        if end != ScriptEnd::Completed {
                            return end;
                        }
                    }
                    Duration::ZERO
                }
                _ => Duration::ZERO, // refused by validation
            };
            if self.wait(conference.id, participant_id, wait) != ScriptEnd::Completed {
                return ScriptEnd::Gone;
            }
        }
        ScriptEnd::Completed
    }

    /// Waits `length`, or until the participant is gone.
    fn wait(&self, conference: uuid::Uuid, participant_id: u32, length: Duration) -> ScriptEnd {
        let deadline = Instant::now() + length;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return ScriptEnd::Completed;
            }
            if !self.is_present(conference, participant_id) {
                return ScriptEnd::Gone;
            }
            std::thread::sleep(PRESENCE_CHECK.min(deadline - now));
        }
    }

    fn is_present(&self, conference: uuid::Uuid, participant_id: u32) -> bool {
        self.participants_known(conference)
            .contains_key(&participant_id)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn scripts_never_take_the_runtimes_blocking_threads() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut releases = Vec::new();
        runtime.block_on(async {
            // Two scripts that wait until released.
            for _ in 0..2 {
                let (release, released) = std::sync::mpsc::channel::<()>();
                releases.push(release);
                super::spawn(move || {
                    let _ = released.recv();
                });
            }
            // An API handler's blocking work still gets the one blocking thread.
            let handler = tokio::task::spawn_blocking(|| 42);
            let answer = tokio::time::timeout(Duration::from_secs(5), handler).await;
            assert_eq!(answer.ok().and_then(Result::ok), Some(42));
        });
        drop(releases);
    }
}
