//! SIPp (Debian's sip-tester) runs: the scenarios of `tests/sipp/`, or SIPp's built-in ones.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path of `tests/sipp/<name>.xml`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(format!("{name}.xml"))
}

/// A SIPp process, killed when dropped.
pub struct Sipp {
    child: Child,
    errors: PathBuf,
    messages: PathBuf,
}

/// What a finished SIPp run left.
#[derive(Debug)]
pub struct Outcome {
    /// SIPp's exit code: 0 when every call followed the scenario.
    pub code: Option<i32>,
    /// The unexpected messages and failures it logged.
    pub errors: String,
    /// Every message sent and received.
    pub messages: String,
}

impl Outcome {
    /// Panics with what SIPp logged unless every call followed the scenario.
    pub fn assert_passed(&self, what: &str) {
        assert_eq!(
            self.code,
            Some(0),
            "{what}: SIPp failed\n--- errors\n{}\n--- messages\n{}",
            self.errors,
            self.messages
        );
    }
}

impl Sipp {
    /// Starts SIPp on `local` (UDP) in `dir` with `scenario` (`-sf FILE`, or `-sn NAME` for a
    /// built-in one such as `uas`) and more `args`, e.g. the remote address and `-m 1`.
    pub fn start(dir: &Path, local: SocketAddr, scenario: Scenario<'_>, args: &[&str]) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let name = match scenario {
            Scenario::File(path) => path.file_stem().unwrap().to_string_lossy().into_owned(),
            Scenario::BuiltIn(name) => name.to_owned(),
        };
        let errors = dir.join(format!("{name}-{}-errors.log", local.port()));
        let messages = dir.join(format!("{name}-{}-messages.log", local.port()));
        let mut command = Command::new("sipp");
        match scenario {
            Scenario::File(path) => command.arg("-sf").arg(path),
            Scenario::BuiltIn(name) => command.args(["-sn", name]),
        };
        let child = command
            .args([
                "-i",
                &local.ip().to_string(),
                "-p",
                &local.port().to_string(),
            ])
            .args(["-nostdin", "-trace_err", "-trace_msg", "-error_file"])
            .arg(&errors)
            .arg("-message_file")
            .arg(&messages)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp must be installed (scripts/install-system-deps installs sip-tester)");
        Sipp {
            child,
            errors,
            messages,
        }
    }

    /// Waits for SIPp to finish, at most `within` (then kills it and panics).
    pub fn finish(mut self, within: Duration) -> Outcome {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "SIPp did not finish within {within:?}:\n{}",
                std::fs::read_to_string(&self.messages).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Outcome {
            code: status.code(),
            errors: std::fs::read_to_string(&self.errors).unwrap_or_default(),
            messages: std::fs::read_to_string(&self.messages).unwrap_or_default(),
        }
    }
}

/// Which scenario SIPp plays.
#[derive(Clone, Copy, Debug)]
pub enum Scenario<'a> {
    /// An XML scenario file.
    File(&'a Path),
    /// One of SIPp's built-in scenarios (`uac`, `uas`…).
    BuiltIn(&'a str),
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
