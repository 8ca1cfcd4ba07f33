//! The media engine with independent RTP callers: GStreamer `gst-launch-1.0` pipelines send
//! tones in PCMU and Opus and record what they receive; assertions are on the recordings'
//! frequency content.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use tutti_e2e::gst::{free_port, gst_launch, tail, tempdir, window, Caller, Codec};
use tutti_e2e::{amplitude_at, rms};
use tutti_engine::tutti_mix::{ParticipantSettings, ToneProgram};
use tutti_engine::{
    Engine, EngineConfig, EngineEvent, JoinRequest, ParticipantChange, RoomId, RoomSettings,
};

/// A GStreamer caller joined to an in-process engine.
struct GstCaller {
    caller: Caller,
    key: u32,
}

impl GstCaller {
    fn join(
        engine: &Engine,
        room: RoomId,
        codec: Codec,
        hz: f64,
        settings: ParticipantSettings,
        dir: &std::path::Path,
        name: &str,
    ) -> Self {
        let listen = free_port();
        let offer = codec.sdp(listen);
        let joined = engine
            .join(
                room,
                JoinRequest {
                    offer,
                    settings,
                    latching: Some(false),
                    signalled_source: None,
                    port: None,
                    relay: None,
                },
            )
            .expect("join");
        let to: SocketAddr = format!("127.0.0.1:{}", joined.port).parse().unwrap();
        let caller = Caller::start(codec, hz, listen, to, dir.join(format!("{name}.wav")));
        GstCaller {
            caller,
            key: joined.key,
        }
    }

    fn finish(self) -> (Vec<f32>, u32) {
        self.caller.finish()
    }
}

fn wait_for(engine: &Engine, what: impl Fn(&EngineEvent) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match engine.events().recv_timeout(left) {
            Ok(event) if what(&event) => return,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("the expected event did not come within 10 s");
}

#[test]
fn gstreamer_callers_hear_each_other_across_codecs() {
    let dir = tempdir("room");
    let engine = Engine::start(EngineConfig {
        mixer_threads: 2,
        ports: 32_000..=32_099,
        ..Default::default()
    })
    .unwrap();
    let room = RoomId(0x6a73);
    let settings = RoomSettings {
        entry_sound: Some(ToneProgram::parse("%(600,0,1600)").unwrap().into()),
        ..Default::default()
    };
    engine.create_room(room, settings).unwrap();

    let talker_pcmu = GstCaller::join(
        &engine,
        room,
        Codec::Pcmu,
        440.0,
        ParticipantSettings::default(),
        &dir,
        "pcmu-440",
    );
    let talker_opus = GstCaller::join(
        &engine,
        room,
        Codec::Opus,
        880.0,
        ParticipantSettings::default(),
        &dir,
        "opus-880",
    );
    let muted = GstCaller::join(
        &engine,
        room,
        Codec::Pcmu,
        1320.0,
        ParticipantSettings {
            speak: false,
            ..Default::default()
        },
        &dir,
        "muted-1320",
    );
    let deaf = GstCaller::join(
        &engine,
        room,
        Codec::Pcmu,
        660.0,
        ParticipantSettings {
            hear: false,
            ..Default::default()
        },
        &dir,
        "deaf-660",
    );
    let listener = GstCaller::join(
        &engine,
        room,
        Codec::Opus,
        0.0,
        ParticipantSettings::default(),
        &dir,
        "listener",
    );
    let pcmu_key = talker_pcmu.key;
    wait_for(
        &engine,
        |e| matches!(e, EngineEvent::StartTalking { participant, .. } if *participant == pcmu_key),
    );
    std::thread::sleep(Duration::from_secs(3));

    // Phase 2: the PCMU talker is muted, then a late joiner triggers the entry tone.
    engine
        .update(room, pcmu_key, ParticipantChange::Speak(false))
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let late = GstCaller::join(
        &engine,
        room,
        Codec::Pcmu,
        0.0,
        ParticipantSettings::default(),
        &dir,
        "late",
    );
    std::thread::sleep(Duration::from_millis(400));

    let snapshot = engine.snapshot(room).unwrap();
    // The listener's recording ends first: its tail must not outlast the talkers.
    let (heard, rate) = listener.finish();
    let (pcmu, rate_p) = talker_pcmu.finish();
    let (opus, rate_o) = talker_opus.finish();
    let (muted_heard, _) = muted.finish();
    let (deaf_heard, rate_d) = deaf.finish();
    let _ = late.finish();

    // Steady state of phase 1: from 1 s to 3 s of each recording.
    let level = |samples: &[f32], rate: u32, hz: f64| {
        amplitude_at(window(samples, rate, 1.0, 3.0), rate, hz)
    };
    assert!(
        level(&pcmu, rate_p, 880.0) > 0.1,
        "the PCMU caller hears the Opus caller"
    );
    assert!(
        level(&pcmu, rate_p, 440.0) < 0.01,
        "the PCMU caller does not hear itself"
    );
    assert!(
        level(&opus, rate_o, 440.0) > 0.1,
        "the Opus caller hears the PCMU caller"
    );
    assert!(
        level(&opus, rate_o, 880.0) < 0.01,
        "the Opus caller does not hear itself"
    );
    assert!(
        level(&pcmu, rate_p, 660.0) > 0.1,
        "a deaf caller still speaks"
    );
    for (name, samples, r) in [
        ("pcmu", &pcmu, rate_p),
        ("opus", &opus, rate_o),
        ("listener", &heard, rate),
    ] {
        assert!(
            level(samples, r, 1320.0) < 0.01,
            "{name} hears the muted caller"
        );
    }
    assert!(
        level(&muted_heard, rate_p, 440.0) > 0.1,
        "a muted caller still hears"
    );
    assert!(
        rms(window(&deaf_heard, rate_d, 1.0, 3.0)) < 0.003,
        "a deaf caller hears silence"
    );
    assert!(level(&heard, rate, 440.0) > 0.1 && level(&heard, rate, 880.0) > 0.1);

    // Phase 2, at the end of the listener's recording: no 440 (muted), the entry tone.
    let end = tail(&heard, rate, 1.2);
    assert!(
        amplitude_at(end, rate, 440.0) < 0.01,
        "the muted talker is gone"
    );
    assert!(
        amplitude_at(end, rate, 880.0) > 0.1,
        "the Opus talker goes on"
    );
    assert!(
        amplitude_at(tail(&heard, rate, 0.7), rate, 1600.0) > 0.03,
        "the entry tone is heard"
    );

    let muted_state = snapshot
        .participants
        .iter()
        .find(|p| !p.speak && p.mute_detect);
    assert!(
        muted_state.is_some(),
        "mute-detect shows in the snapshot: {snapshot:?}"
    );
}

/// Forwards `packets` UDP packets from GStreamer to tutti, dropping 5% and swapping 5% with
/// their successor, from a fixed seed (so the impairment is the same on a fast or a loaded
/// machine). Returns (dropped, reordered) when done or told to stop.
fn impairing_proxy(
    to: SocketAddr,
    seed: u64,
    packets: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (SocketAddr, std::thread::JoinHandle<(u64, u64)>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let address = socket.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let mut state = seed;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % 100
        };
        let out = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut held: Option<Vec<u8>> = None;
        let (mut dropped, mut reordered) = (0, 0);
        let mut buf = [0u8; 1500];
        let mut seen = 0;
        while seen < packets && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((len, _)) = socket.recv_from(&mut buf) else {
                continue;
            };
            seen += 1;
            let packet = buf[..len].to_vec();
            let roll = next();
            if roll < 5 {
                dropped += 1;
                continue;
            }
            if roll < 10 && held.is_none() {
                held = Some(packet);
                reordered += 1;
                continue;
            }
            let _ = out.send_to(&packet, to);
            if let Some(late) = held.take() {
                let _ = out.send_to(&late, to);
            }
        }
        (dropped, reordered)
    });
    (address, handle)
}

#[test]
fn five_percent_loss_and_reordering_stay_continuous() {
    let dir = tempdir("loss");
    let engine = Engine::start(EngineConfig {
        mixer_threads: 1,
        ports: 32_100..=32_199,
        ..Default::default()
    })
    .unwrap();
    let room = RoomId(0x1055);
    engine.create_room(room, RoomSettings::default()).unwrap();
    let listener = GstCaller::join(
        &engine,
        room,
        Codec::Pcmu,
        0.0,
        ParticipantSettings::default(),
        &dir,
        "listener",
    );

    // The talker: Opus with in-band FEC, through the impairing proxy.
    let listen = free_port();
    let joined = engine
        .join(
            room,
            JoinRequest {
                offer: Codec::Opus.sdp(listen),
                settings: ParticipantSettings::default(),
                latching: Some(false),
                signalled_source: None,
                port: None,
                relay: None,
            },
        )
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // 300 packets: 6 s of 20 ms Opus.
    let (proxy, proxy_thread) = impairing_proxy(
        format!("127.0.0.1:{}", joined.port).parse().unwrap(),
        0x5eed,
        300,
        stop.clone(),
    );
    let talker = gst_launch(&format!(
        "audiotestsrc is-live=true wave=sine freq=500 volume=0.3 ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 ! opusenc audio-type=voice bitrate=24000 inband-fec=true packet-loss-percentage=10 ! rtpopuspay pt=111 ! udpsink host=127.0.0.1 port={}",
        proxy.port()
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !proxy_thread.is_finished() {
        if Instant::now() > deadline {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            panic!("the talker's 300 packets did not arrive in 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (dropped, reordered) = proxy_thread.join().unwrap();
    // Let the last forwarded packets play out and the snapshot catch up.
    std::thread::sleep(Duration::from_millis(300));
    let snapshot = engine.snapshot(room).unwrap();
    drop(talker);
    let (heard, rate) = listener.finish();

    let stats = snapshot
        .participants
        .iter()
        .find(|p| p.key == joined.key)
        .unwrap();
    assert!(
        dropped >= 8 && reordered >= 8,
        "the proxy impaired the stream: {dropped} dropped, {reordered} reordered"
    );
    // Losses counted by the jitter buffer match what the proxy dropped (the snapshot is at
    // most 100 ms older than the proxy's last count: allow the packets of that window).
    let lost = stats.jitter.lost;
    assert!(
        lost + 2 >= dropped.saturating_sub(5) && lost <= dropped + 2,
        "jitter buffer lost {lost}, proxy dropped {dropped}: {:?}",
        stats.jitter
    );
    assert!(
        stats.jitter.late <= 2,
        "reordered packets arrive in time: {:?}",
        stats.jitter
    );
    assert!(
        stats.counters.concealed >= lost,
        "every loss concealed or recovered: {:?}",
        stats.counters
    );
    assert!(
        stats.counters.fec_recovered * 2 >= lost,
        "most losses recovered from Opus FEC: {:?}",
        stats.counters
    );

    // Continuous: in the steady state every 20 ms of the listener's audio carries the tone.
    let steady = window(&heard, rate, 1.5, 5.0);
    let frame = (rate / 50) as usize;
    let quiet = steady
        .chunks_exact(frame)
        .filter(|chunk| rms(chunk) < 0.05)
        .count();
    assert_eq!(
        quiet,
        0,
        "{quiet} silent 20 ms frames in {} frames",
        steady.len() / frame
    );
    assert!(amplitude_at(steady, rate, 500.0) > 0.15);
}
