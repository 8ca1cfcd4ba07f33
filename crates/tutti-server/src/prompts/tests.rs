//! Prompts against local HTTP servers on 127.0.0.1 (let through only where a test lists them)
//! and a media directory of its own.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

/// What a path answers: status, extra headers, body, and a delay before the body.
#[derive(Clone, Default)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    stall: Duration,
}

fn ok(body: Vec<u8>) -> Answer {
    Answer {
        status: 200,
        body,
        ..Answer::default()
    }
}

fn redirect(to: &str) -> Answer {
    Answer {
        status: 302,
        headers: vec![("Location".into(), to.into())],
        ..Answer::default()
    }
}

/// An HTTP server on 127.0.0.1 answering by path; remembers the paths asked for.
struct Site {
    port: u16,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Site {
    fn start(routes: Vec<(&str, Answer)>) -> Site {
        let routes: HashMap<String, Answer> =
            routes.into_iter().map(|(p, a)| (p.to_owned(), a)).collect();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                log.lock().unwrap().push(path.clone());
                let answer = routes.get(&path).cloned().unwrap_or(Answer {
                    status: 404,
                    ..Answer::default()
                });
                let mut head = format!(
                    "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    answer.status,
                    answer.body.len()
                );
                for (name, value) in &answer.headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                let mut stream = &stream;
                let _ = stream.write_all(head.as_bytes());
                std::thread::sleep(answer.stall);
                let _ = stream.write_all(&answer.body);
            }
        });
        Site { port, asked }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

/// A folder of its own under the system's temporary folder, removed when dropped.
struct Folder(PathBuf);

impl Folder {
    fn new() -> Folder {
        let path = std::env::temp_dir().join(format!("tutti-prompts-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(path.join("media/recordings")).unwrap();
        Folder(path)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A WAV file of `seconds` of a 440 Hz tone, as bytes.
fn wav(folder: &Folder, seconds: f32) -> Vec<u8> {
    let samples: Vec<f32> = (0..(48_000.0 * seconds) as usize)
        .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin() * 0.3)
        .collect();
    let path = folder.0.join("tone.wav");
    tutti_engine::wav::write_mono_48k(&path, &samples).unwrap();
    std::fs::read(&path).unwrap()
}

fn prompts(folder: &Folder, allow: &[&str], change: impl FnOnce(&mut PromptSettings)) -> Prompts {
    let mut settings = PromptSettings::new(
        folder.0.join("media"),
        folder.0.join("scratch"),
        folder.0.join("media/recordings"),
    );
    settings.outbound = OutboundPolicy::allowing(allow.iter().copied()).unwrap();
    change(&mut settings);
    Prompts::new(settings)
}

#[test]
fn the_default_rule_refuses_local_and_special_addresses_without_connecting() {
    let folder = Folder::new();
    let site = Site::start(vec![("/a.wav", ok(wav(&folder, 0.1)))]);
    let prompts = prompts(&folder, &[], |_| {});
    for url in [
        site.url("/a.wav"),
        format!("http://localhost:{}/a.wav", site.port),
        format!("http://[::ffff:127.0.0.1]:{}/a.wav", site.port),
        format!("http://[::1]:{}/a.wav", site.port),
        "http://169.254.169.254/latest/meta-data/".into(),
        "http://10.0.0.1/a.wav".into(),
        format!("http://user:pass@127.0.0.1:{}/a.wav", site.port),
        "gopher://127.0.0.1:70/_x".into(),
        "file:///etc/passwd".into(),
    ] {
        assert_eq!(prompts.clip(&url), Err(MediaError::Unplayable), "{url}");
    }
    assert!(site.asked().is_empty(), "{:?}", site.asked());
}

#[test]
fn a_listed_host_is_fetched_once_decoded_and_cached() {
    let folder = Folder::new();
    let body = wav(&folder, 0.5);
    let site = Site::start(vec![("/a.wav", ok(body)), ("/moved", redirect("/a.wav"))]);
    let listed = format!("127.0.0.1:{}", site.port);
    let prompts = prompts(&folder, &[&listed], |_| {});
    let first = prompts.clip(&site.url("/a.wav")).unwrap();
    assert_eq!(first.len(), 24_000);
    let again = prompts.clip(&site.url("/a.wav")).unwrap();
    assert!(Arc::ptr_eq(&first, &again), "served from the cache");
    assert_eq!(site.asked(), ["/a.wav"]);
    // A redirect within the listed host is followed (and checked).
    assert_eq!(prompts.clip(&site.url("/moved")).unwrap().len(), 24_000);
    assert_eq!(site.asked(), ["/a.wav", "/moved", "/a.wav"]);
}

#[test]
fn redirects_to_forbidden_places_are_not_followed() {
    let folder = Folder::new();
    let body = wav(&folder, 0.1);
    let inner = Site::start(vec![("/secret.wav", ok(body))]);
    let outer = Site::start(vec![
        ("/to-loopback", redirect(&inner.url("/secret.wav"))),
        (
            "/to-localhost",
            redirect(&format!("http://localhost:{}/secret.wav", inner.port)),
        ),
        (
            "/to-metadata",
            redirect("http://169.254.169.254/latest/meta-data/"),
        ),
        ("/to-file", redirect("file:///etc/passwd")),
        (
            "/to-userinfo",
            redirect(&format!("http://a:b@127.0.0.1:{}/x", inner.port)),
        ),
        ("/loop", redirect("/loop")),
    ]);
    // Only the outer site is listed, on its port.
    let listed = format!("127.0.0.1:{}", outer.port);
    let prompts = prompts(&folder, &[&listed], |_| {});
    for path in [
        "/to-loopback",
        "/to-localhost",
        "/to-metadata",
        "/to-file",
        "/to-userinfo",
    ] {
        assert_eq!(
            prompts.clip(&outer.url(path)),
            Err(MediaError::Unplayable),
            "{path}"
        );
    }
    assert!(inner.asked().is_empty(), "{:?}", inner.asked());
    assert_eq!(
        prompts.clip(&outer.url("/loop")),
        Err(MediaError::Unplayable)
    );
    let loops = outer.asked().iter().filter(|p| *p == "/loop").count();
    assert_eq!(loops, 4, "the first request and 3 redirects");
}

#[test]
fn bodies_that_are_not_audio_too_large_or_too_slow_are_refused_and_not_cached() {
    let folder = Folder::new();
    let big = wav(&folder, 1.0);
    let site = Site::start(vec![
        ("/page.wav", ok(b"<html>not audio</html>".to_vec())),
        ("/big.wav", ok(big)),
        (
            "/slow.wav",
            Answer {
                stall: Duration::from_secs(3),
                ..ok(wav(&folder, 0.1))
            },
        ),
        (
            "/gone.wav",
            Answer {
                status: 404,
                ..Answer::default()
            },
        ),
    ]);
    let listed = format!("127.0.0.1:{}", site.port);
    let prompts = prompts(&folder, &[&listed], |s| {
        s.max_bytes = 50_000;
        s.timeout = Duration::from_millis(500);
    });
    for _ in 0..2 {
        assert_eq!(
            prompts.clip(&site.url("/page.wav")),
            Err(MediaError::Unplayable)
        );
    }
    assert_eq!(
        site.asked().iter().filter(|p| *p == "/page.wav").count(),
        2,
        "a body that is not audio is not cached"
    );
    assert_eq!(
        prompts.clip(&site.url("/big.wav")),
        Err(MediaError::Unplayable)
    );
    let started = Instant::now();
    assert_eq!(
        prompts.clip(&site.url("/slow.wav")),
        Err(MediaError::Unplayable)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        prompts.clip(&site.url("/gone.wav")),
        Err(MediaError::Unplayable)
    );
    assert_eq!(prompts.cache.lock().unwrap().len(), 0);
    let scratch: Vec<_> = std::fs::read_dir(folder.0.join("scratch"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(scratch.is_empty(), "{scratch:?}");
}

#[test]
fn files_come_from_the_media_directory_by_plain_name_only() {
    let folder = Folder::new();
    let body = wav(&folder, 0.25);
    let media = folder.0.join("media");
    std::fs::write(media.join("welcome.wav"), &body).unwrap();
    std::fs::write(media.join("recordings/1700000000000.wav"), &body).unwrap();
    std::fs::write(folder.0.join("outside.wav"), &body).unwrap();
    std::fs::write(media.join("notes.txt"), b"not audio").unwrap();
    std::os::unix::fs::symlink(folder.0.join("outside.wav"), media.join("escape.wav")).unwrap();
    std::os::unix::fs::symlink(
        media.join("recordings/1700000000000.wav"),
        media.join("meeting.wav"),
    )
    .unwrap();
    let prompts = prompts(&folder, &[], |_| {});
    assert_eq!(prompts.clip("welcome.wav").unwrap().len(), 12_000);
    let absolute = media.join("welcome.wav").display().to_string();
    let file_url = format!("file://{absolute}");
    for refused in [
        "recordings",
        "recordings/1700000000000.wav",
        "../outside.wav",
        "escape.wav",
        "meeting.wav",
        "notes.txt",
        "missing.wav",
        absolute.as_str(),
        file_url.as_str(),
    ] {
        // The same answer whether the file exists or not.
        assert_eq!(
            prompts.clip(refused),
            Err(MediaError::Unplayable),
            "{refused}"
        );
    }
}

#[test]
fn the_cache_is_bounded_in_entries_and_bytes() {
    let clip = |n: usize| -> Arc<[f32]> { vec![0.0; n].into() };
    let mut cache = Cache::new(2, 4_000);
    cache.insert("a".into(), clip(100));
    cache.insert("b".into(), clip(100));
    assert!(cache.get("a").is_some());
    cache.insert("c".into(), clip(100));
    assert_eq!(cache.len(), 2);
    assert!(cache.get("b").is_none(), "the least recently used went");
    assert!(cache.get("a").is_some() && cache.get("c").is_some());
    cache.insert("d".into(), clip(950));
    assert_eq!(cache.len(), 1, "3800 + 400 bytes is over 4000");
    assert_eq!(cache.bytes, 3_800);
    cache.insert("e".into(), clip(2_000));
    assert!(
        cache.get("e").is_none(),
        "larger than the whole cache: not kept"
    );
    assert!(cache.get("d").is_some());
}
