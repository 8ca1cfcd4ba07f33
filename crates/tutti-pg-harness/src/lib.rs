//! # tutti-pg-harness: a throwaway PostgreSQL for tests
//!
//! [`TempPostgres::shared`] starts one PostgreSQL server per test process from the binaries of
//! Debian's `postgresql` package (`initdb`, `pg_ctl` under `/usr/lib/postgresql/*/bin`), in a
//! temporary directory, listening on a free port of 127.0.0.1 with trust authentication and
//! `fsync` off. Each test takes a database of its own with [`TempPostgres::database`]. A
//! watcher process stops the server and removes its directory when the test process exits,
//! however it exits.
//!
//! When PostgreSQL is not installed the tests that need it are skipped, saying so, unless
//! `TUTTI_REQUIRE_PEERS` is set (as `scripts/test` does not, but CI may): then it is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The role every test database belongs to.
const ROLE: &str = "tutti";

/// A running throwaway PostgreSQL server.
#[derive(Debug)]
pub struct TempPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    databases: AtomicU32,
}

impl TempPostgres {
    /// The process's server, started on first use; `None` (after saying why on stderr) when
    /// PostgreSQL is not installed and `TUTTI_REQUIRE_PEERS` is unset.
    ///
    /// # Panics
    /// When PostgreSQL is installed but does not start, or is missing while
    /// `TUTTI_REQUIRE_PEERS` is set.
    pub fn shared(test: &str) -> Option<&'static TempPostgres> {
        static SERVER: OnceLock<Option<TempPostgres>> = OnceLock::new();
        let server = SERVER.get_or_init(|| postgres_bin().map(TempPostgres::start));
        if server.is_none() {
            assert!(
                std::env::var_os("TUTTI_REQUIRE_PEERS").is_none(),
                "{test}: PostgreSQL is not installed and TUTTI_REQUIRE_PEERS is set \
                 (run scripts/install-system-deps)"
            );
            eprintln!(
                "{test}: skipped, PostgreSQL is not installed (scripts/install-system-deps \
                 installs it; set TUTTI_REQUIRE_PEERS=1 to make this a failure)"
            );
        }
        server.as_ref()
    }

    fn start(bin: PathBuf) -> TempPostgres {
        let dir = std::env::temp_dir().join(format!(
            "tutti-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("create the PostgreSQL directory");
        let as_root = is_root();
        if as_root {
            // initdb refuses to run as root: the server runs as the package's `postgres` user.
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("run chown");
            assert!(
                status.success(),
                "chown the PostgreSQL directory to postgres"
            );
        }
        let data = dir.join("data");
        run(
            as_root,
            Command::new(bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", ROLE, "--auth=trust", "-E", "UTF8", "--no-sync"])
                .args(["--locale=C"]),
            "initdb",
        );
        let port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            dir.display()
        );
        run(
            as_root,
            Command::new(bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .args(["-o", &options, "-l"])
                .arg(dir.join("log"))
                .args(["-w", "start"]),
            "pg_ctl start",
        );
        watch(&bin, &dir, as_root);
        TempPostgres {
            bin,
            dir,
            port,
            databases: AtomicU32::new(0),
        }
    }

    /// A new, empty database on the process's server for `test`, as a `postgres://` URL;
    /// `None` when PostgreSQL is not installed (see [`TempPostgres::shared`]).
    pub fn database_for(test: &str) -> Option<String> {
        Self::shared(test).map(Self::database)
    }

    /// A new, empty database on the server, as a `postgres://` URL.
    ///
    /// # Panics
    /// When `createdb` fails.
    pub fn database(&self) -> String {
        let name = format!("t{}", self.databases.fetch_add(1, Ordering::Relaxed));
        let status = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", ROLE])
            .arg(&name)
            .stdout(Stdio::null())
            .status()
            .expect("run createdb");
        assert!(status.success(), "createdb {name}");
        self.url(&name)
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}/{name}", self.port)
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's directory (data, log and socket).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The directory of the newest installed PostgreSQL's binaries, if any.
pub fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

fn run(as_root: bool, command: &mut Command, what: &str) {
    let output = if as_root {
        let program = command.get_program().to_owned();
        let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args)
            .output()
    } else {
        command.output()
    }
    .unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts a process that waits for this one to end, then stops the server and removes its
/// directory.
fn watch(bin: &Path, dir: &Path, as_root: bool) {
    let stop = format!(
        "{} {} -D {} -m immediate stop",
        if as_root {
            "runuser -u postgres --"
        } else {
            ""
        },
        bin.join("pg_ctl").display(),
        dir.join("data").display()
    );
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    let mut watcher = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the PostgreSQL watcher");
    // The watcher outlives this process; a thread reaps it should it end first.
    std::thread::spawn(move || watcher.wait());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_is_created_and_answers() {
        let Some(server) = TempPostgres::shared("a_database_is_created_and_answers") else {
            return;
        };
        let url = server.database();
        assert!(url.starts_with("postgres://tutti@127.0.0.1:"));
        let out = Command::new(server.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &server.port.to_string(),
                "-U",
                ROLE,
            ])
            .args(["-d", url.rsplit('/').next().unwrap_or_default()])
            .args(["-tAc", "select 40 + 2"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    }
}
