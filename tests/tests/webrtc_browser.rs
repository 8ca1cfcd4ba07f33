//! Headless Chromium joins a room through tutti's join page over WebRTC (ICE, DTLS-SRTP, Opus),
//! with a 440 Hz WAV file as its microphone, beside a GStreamer RTP caller sending 880 Hz that
//! joined through the Kazoo API: each hears the other, the page's roster shows both, the API
//! mutes, unmutes and kicks the browser. The join form is also checked at a phone's size.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use tutti_e2e::chromium::{self, Browser};
use tutti_e2e::gst::{tail, tempdir, Codec, RECORDING_RATE};
use tutti_e2e::kazoo::Session;
use tutti_e2e::{amplitude_at, artifacts_dir, rms};

const WITHIN: Duration = Duration::from_secs(15);

/// Measures what a `MediaStream` carries with WebAudio: `tuttiProbe(stream)` starts an
/// AnalyserNode on it; `tuttiMeasure()` then gives the dominant frequency of the last 16384
/// samples (`hz`, bins of about 3 Hz at 48 kHz), its level (`db`) and the signal's `rms`.
const PROBE: &str = r#"
window.tuttiProbe = (stream) => {
  const context = new AudioContext();
  // Chromium hands a remote WebRTC track's samples to WebAudio only while a media element
  // plays the stream.
  const element = new Audio();
  element.muted = true;
  element.srcObject = stream;
  element.play().catch(() => {});
  const analyser = context.createAnalyser();
  analyser.fftSize = 16384;
  analyser.smoothingTimeConstant = 0;
  context.createMediaStreamSource(stream).connect(analyser);
  const spectrum = new Float32Array(analyser.frequencyBinCount);
  const wave = new Float32Array(analyser.fftSize);
  window.tuttiMeasure = () => {
    analyser.getFloatFrequencyData(spectrum);
    analyser.getFloatTimeDomainData(wave);
    let best = 1;
    for (let i = 2; i < spectrum.length; i++) {
      if (spectrum[i] > spectrum[best]) best = i;
    }
    const rms = Math.sqrt(wave.reduce((sum, x) => sum + x * x, 0) / wave.length);
    return { hz: best * context.sampleRate / analyser.fftSize, db: spectrum[best], rms,
             context: context.state };
  };
  return context.resume().then(() => context.state);
};
"#;

/// A 48 kHz mono WAV file of a `hz` sine at half scale, 2 s long (a whole number of periods
/// for tones of whole hertz, so Chromium loops it without a click).
fn tone_wav(path: &Path, hz: f64) -> PathBuf {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..96_000 {
        let phase = 2.0 * std::f64::consts::PI * hz * f64::from(i) / 48_000.0;
        writer
            .write_sample((0.5 * phase.sin() * 32767.0) as i16)
            .unwrap();
    }
    writer.finalize().unwrap();
    path.to_owned()
}

/// A conference without prompts or tones in which members speak; its id.
fn conference(session: &Session) -> String {
    session.create(
        json!({"name": "WebRTC", "play_welcome": false, "play_entry_tone": false,
        "play_exit_tone": false, "member": {"join_muted": false}}),
    )
}

/// Polls `read` every 50 ms until it gives something, at most `within`; `last` describes the
/// last state seen for the failure message.
fn poll<T>(what: &str, within: Duration, mut read: impl FnMut(&mut String) -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    loop {
        if let Some(found) = read(&mut last) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen in {within:?}; last: {last}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The 440 Hz amplitude and the level of the last half second a caller recorded.
fn last_half_second(samples: &[f32]) -> (f64, f64) {
    let end = tail(samples, RECORDING_RATE, 0.5);
    (amplitude_at(end, RECORDING_RATE, 440.0), rms(end))
}

/// Acts on participant `id` through the Kazoo API (`mute`, `unmute`, `kick`).
fn act(session: &Session, conference: &str, id: u64, action: &str) {
    let (status, body) = session.call(
        "PUT",
        &format!("/{conference}/participants/{id}"),
        Some(json!({"action": action, "data": {}})),
    );
    assert_eq!(status, 202, "{action}: {body}");
    assert_eq!(body["data"]["action"], action, "{body}");
}

/// Saves a screenshot of the page as `target/artifacts/{file}` and says where.
fn keep_screenshot(browser: &mut Browser, file: &str, what: &str) {
    let path = artifacts_dir().join(file);
    browser.screenshot(&path);
    eprintln!("screenshot of {what}: {}", path.display());
}

/// A JavaScript expression: whether participant `id`'s roster entry has the class `class`.
fn roster_entry_is(id: u64, class: &str) -> String {
    format!(
        "document.querySelector('#roster li[data-participant-id=\"{id}\"]')\
         ?.classList.contains('{class}')"
    )
}

/// The participant ids of the page's roster, sorted.
fn roster(browser: &mut Browser) -> Vec<u64> {
    let ids = browser.evaluate(
        "[...document.querySelectorAll('#roster li[data-participant-id]')]\
         .map(li => Number(li.dataset.participantId)).sort((a, b) => a - b)",
    );
    serde_json::from_value(ids).unwrap()
}

#[test]
fn a_browser_joins_through_the_join_page_hears_is_heard_and_is_muted_and_kicked_by_the_api() {
    let test = "webrtc_browser::a_browser_joins_through_the_join_page";
    if !chromium::available(test) {
        return;
    }
    let started = Instant::now();
    let dir = tempdir("webrtc-browser");
    let session = Session::start(&dir, (35_000, 35_099));
    let room = conference(&session);
    let (caller, caller_id) = session.join(&room, Codec::Opus, 880.0, false, dir.join("rtp.wav"));

    let mut browser = Browser::launch(&dir, &tone_wav(&dir.join("440.wav"), 440.0));
    let page = format!(
        "http://{}/join/{room}#token={}&name=Browser",
        session.server.address, session.token
    );
    browser.navigate(&page);
    let joining = Instant::now();
    browser.wait_for(
        "window.tutti && window.tutti.state == 'joined' \
         && window.tutti.pc.connectionState == 'connected'",
        WITHIN,
    );
    eprintln!("connected in {:?}", joining.elapsed());
    let browser_id = browser
        .wait_for("window.tutti.participantId", WITHIN)
        .as_u64()
        .expect("window.tutti.participantId is a number");
    let (status, listed) = session.call("GET", &format!("/{room}/participants"), None);
    assert_eq!(status, 200, "{listed}");
    let mut listed: Vec<u64> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["participant_id"].as_u64())
        .collect();
    listed.sort_unstable();
    let mut both = vec![caller_id, browser_id];
    both.sort_unstable();
    assert_eq!(listed, both, "the API lists the RTP caller and the browser");

    // The browser hears the RTP caller's 880 Hz.
    assert_eq!(
        browser.evaluate(&format!("{PROBE}; tuttiProbe(window.tutti.remoteStream)")),
        "running"
    );
    let heard = poll("880 Hz in the browser", WITHIN, |last| {
        let m = browser.evaluate("tuttiMeasure()");
        *last = m.to_string();
        let hz = m["hz"].as_f64().unwrap_or(0.0);
        ((hz - 880.0).abs() < 10.0 && m["rms"].as_f64().unwrap_or(0.0) > 0.02).then_some(m)
    });
    eprintln!("the browser hears {heard}");

    // The RTP caller hears the browser's 440 Hz: a tone, not noise (a sine's amplitude is √2
    // times its RMS level, the half second must be mostly the tone; noise spreads its level
    // over every frequency). The page asks for Chromium's noise suppression, which within
    // seconds takes a steady tone down by about 19 dB (0.5 in the file, 0.05 sent), hence the
    // low bar.
    let (amplitude, level) = poll("440 Hz at the RTP caller", WITHIN, |last| {
        let (amplitude, level) = last_half_second(&caller.heard_so_far());
        *last = format!("440 Hz amplitude {amplitude:.4}, rms {level:.4}");
        (amplitude > 0.02 && amplitude > 1.2 * level).then_some((amplitude, level))
    });
    eprintln!("the RTP caller hears 440 Hz at amplitude {amplitude:.3} (rms {level:.3})");

    eprintln!(
        "the browser hears, later: {}",
        browser.evaluate("tuttiMeasure()")
    );

    // The roster lists both; the RTP caller talks.
    poll("both in the roster", WITHIN, |last| {
        let ids = roster(&mut browser);
        *last = format!("{ids:?}");
        (ids == both).then_some(())
    });
    browser.wait_for(&roster_entry_is(caller_id, "talking"), WITHIN);

    keep_screenshot(
        &mut browser,
        "webrtc-join-page.png",
        "the join page in the room",
    );

    // Muted by the API, the browser is no longer heard but stays connected; unmuted, it is
    // heard again.
    act(&session, &room, browser_id, "mute");
    poll("silence at the RTP caller", WITHIN, |last| {
        let (amplitude, level) = last_half_second(&caller.heard_so_far());
        *last = format!("440 Hz amplitude {amplitude:.4}, rms {level:.4}");
        (amplitude < 0.005 && level < 0.005).then_some(())
    });
    browser.wait_for(&roster_entry_is(browser_id, "muted"), WITHIN);
    assert_eq!(
        browser.evaluate("[window.tutti.state, window.tutti.pc.connectionState]"),
        json!(["joined", "connected"]),
        "muted, the browser stays in the room"
    );
    act(&session, &room, browser_id, "unmute");
    poll("440 Hz at the RTP caller after unmute", WITHIN, |last| {
        let (amplitude, level) = last_half_second(&caller.heard_so_far());
        *last = format!("440 Hz amplitude {amplitude:.4}, rms {level:.4}");
        (amplitude > 0.02 && amplitude > 1.2 * level).then_some(())
    });

    // Kicked by the API, the page closes its peer connection and says it was removed.
    act(&session, &room, browser_id, "kick");
    let kicked = Instant::now();
    let closed = browser.wait_for(
        "['closed', 'failed', 'disconnected'].includes(window.tutti.pc.connectionState) \
         && window.tutti.pc.connectionState",
        WITHIN,
    );
    eprintln!(
        "kicked: the peer connection {closed} after {:?}",
        kicked.elapsed()
    );
    let shown = browser.wait_for(
        "window.tutti.state == 'removed' && document.querySelector('#status').textContent",
        WITHIN,
    );
    assert_eq!(
        shown, "You were removed from the conference.",
        "the page says it was removed"
    );
    let (_, listed) = session.call("GET", &format!("/{room}/participants"), None);
    assert!(
        !listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["participant_id"] == json!(browser_id)),
        "the kicked browser has left: {listed}"
    );
    drop(caller);
    eprintln!("test took {:?}", started.elapsed());
}

#[test]
fn the_join_form_fits_a_phone_screen() {
    let test = "webrtc_browser::the_join_form_fits_a_phone_screen";
    if !chromium::available(test) {
        return;
    }
    let dir = tempdir("webrtc-phone");
    let session = Session::start(&dir, (35_100, 35_199));
    let room = conference(&session);
    let mut browser = Browser::launch(&dir, &tone_wav(&dir.join("440.wav"), 440.0));
    browser.emulate_phone(390, 844);
    browser.navigate(&format!("http://{}/join/{room}", session.server.address));
    let layout = browser.wait_for(
        "(() => { const join = document.querySelector('#join'); if (!join) return null; \
           const box = join.getBoundingClientRect(); const style = getComputedStyle(join); \
           return { left: box.left, right: box.right, top: box.top, bottom: box.bottom, \
             width: box.width, height: box.height, display: style.display, \
             visibility: style.visibility, viewport: window.innerWidth, \
             viewportHeight: window.innerHeight, \
             scrollWidth: document.documentElement.scrollWidth }; })()",
        WITHIN,
    );
    keep_screenshot(
        &mut browser,
        "webrtc-join-page-phone.png",
        "the join form on a phone",
    );
    let number = |key: &str| layout[key].as_f64().unwrap_or(f64::NAN);
    assert_eq!(number("viewport"), 390.0, "{layout}");
    assert!(
        number("width") > 0.0 && number("height") > 0.0,
        "the join button is shown: {layout}"
    );
    assert!(
        layout["display"] != "none" && layout["visibility"] == "visible",
        "the join button is visible: {layout}"
    );
    assert!(
        number("left") >= 0.0 && number("right") <= 390.0,
        "the join button lies within the phone's width: {layout}"
    );
    assert!(
        number("top") >= 0.0 && number("bottom") <= number("viewportHeight"),
        "the join button is on the first screen: {layout}"
    );
    assert!(
        number("scrollWidth") <= 390.0,
        "the page does not scroll sideways: {layout}"
    );
}

#[test]
fn the_browser_s_fake_microphone_carries_the_wav_tone() {
    // The driver and the WebAudio probe of the tests above, on the browser's own microphone:
    // the page is the server's health check, any page of a secure (loopback) origin will do.
    let test = "webrtc_browser::the_browser_s_fake_microphone_carries_the_wav_tone";
    if !chromium::available(test) {
        return;
    }
    let dir = tempdir("webrtc-microphone");
    let session = Session::start(&dir, (35_200, 35_299));
    let mut browser = Browser::launch(&dir, &tone_wav(&dir.join("440.wav"), 440.0));
    browser.navigate(&format!("http://{}/healthz", session.server.address));
    let state = browser.evaluate(&format!(
        "{PROBE}; navigator.mediaDevices.getUserMedia({{audio: true}}).then(tuttiProbe)"
    ));
    assert_eq!(state, "running");
    let heard = poll("440 Hz from the microphone", WITHIN, |last| {
        let m = browser.evaluate("tuttiMeasure()");
        *last = m.to_string();
        ((m["hz"].as_f64().unwrap_or(0.0) - 440.0).abs() < 10.0).then_some(m)
    });
    // Chromium's noise suppression (on by default) takes a steady tone down by about 19 dB.
    assert!(heard["rms"].as_f64().unwrap() > 0.02, "{heard}");
}

/// In the page: asks for the microphone, makes a peer connection sending it, gathers every
/// candidate and resolves to the offer (`window.pc` keeps the connection).
const OFFER: &str = r#"
(async () => {
  const microphone = await navigator.mediaDevices.getUserMedia({ audio: true });
  const pc = new RTCPeerConnection();
  microphone.getTracks().forEach((track) => pc.addTrack(track, microphone));
  window.pc = pc;
  window.remoteStream = new MediaStream();
  pc.ontrack = (event) => window.remoteStream.addTrack(event.track);
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((done) => pc.addEventListener('icegatheringstatechange',
      () => pc.iceGatheringState === 'complete' && done()));
  }
  return pc.localDescription.sdp;
})()
"#;

#[test]
fn a_browser_joins_through_the_kazoo_participants_api_with_its_webrtc_offer() {
    let test = "webrtc_browser::a_browser_joins_through_the_kazoo_participants_api";
    if !chromium::available(test) {
        return;
    }
    let dir = tempdir("webrtc-kazoo");
    let session = Session::start(&dir, (35_300, 35_399));
    let room = conference(&session);
    let (caller, _) = session.join(&room, Codec::Opus, 880.0, false, dir.join("rtp.wav"));
    let mut browser = Browser::launch(&dir, &tone_wav(&dir.join("440.wav"), 440.0));
    // Any page of the server's (loopback, hence secure) origin may use the microphone.
    browser.navigate(&format!("http://{}/healthz", session.server.address));

    let offer = browser.evaluate(OFFER);
    let offer = offer.as_str().expect("the browser's offer");
    assert!(offer.contains("UDP/TLS/RTP/SAVPF"), "{offer}");
    let (status, joined) = session.call(
        "PUT",
        &format!("/{room}/participants"),
        Some(json!({"data": {"sdp": offer, "caller_id_name": "Chromium"}})),
    );
    assert_eq!(status, 201, "{joined}");
    let answer = joined["data"]["sdp"].as_str().expect("an SDP answer");
    assert!(
        answer.contains("a=ice-lite") && answer.contains("a=fingerprint:"),
        "{answer}"
    );
    assert!(
        answer.contains(&format!(" {} typ host", session.server.webrtc.port())),
        "the answer's candidate is the WebRTC port: {answer}"
    );
    browser.evaluate(&format!(
        "window.pc.setRemoteDescription({{type: 'answer', sdp: {}}}).then(() => true)",
        json!(answer)
    ));
    browser.wait_for("window.pc.connectionState == 'connected'", WITHIN);

    assert_eq!(
        browser.evaluate(&format!("{PROBE}; tuttiProbe(window.remoteStream)")),
        "running"
    );
    poll("880 Hz in the browser", WITHIN, |last| {
        let m = browser.evaluate("tuttiMeasure()");
        *last = m.to_string();
        let hz = m["hz"].as_f64().unwrap_or(0.0);
        ((hz - 880.0).abs() < 10.0 && m["rms"].as_f64().unwrap_or(0.0) > 0.02).then_some(())
    });
    poll("440 Hz at the RTP caller", WITHIN, |last| {
        let (amplitude, level) = last_half_second(&caller.heard_so_far());
        *last = format!("440 Hz amplitude {amplitude:.4}, rms {level:.4}");
        (amplitude > 0.02 && amplitude > 1.2 * level).then_some(())
    });
    let (_, listed) = session.call("GET", &format!("/{room}/participants"), None);
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["caller_id_name"] == "Chromium"),
        "the browser is a participant like any other: {listed}"
    );
}
