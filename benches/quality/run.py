"""The speech-quality benchmark (run by scripts/quality).

Speech from espeak-ng goes from an Opus talker (GStreamer's opusenc at complexity 10) through a
running tutti server to a listener (GStreamer's rtpjitterbuffer and opusdec) that records it;
PESQ-WB scores the recording against the speech. Three cases: no loss, 5 % random loss on the
talker's packets (lost between the talker and the server, the same packets in every run of a
seed), and the same loss with the talker's in-band FEC on. Beside each score stands the offline
floor of the same case: the speech through the same talker settings and the same lost packets,
decoded, coded again with tutti's mix encoder settings and decoded (target/release/two_pass).
With --browser, one more case: headless Chromium is the talker, the speech its fake microphone,
joined through tutti's join page over WebRTC (Chromium's own audio processing and Opus encoder;
no floor is computed for it).

    run.py TUTTI TWO_PASS WORKDIR [--seeds N] [--browser]
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np

import speech

TEXT = (
    "The birch canoe slid on the smooth planks. "
    "Glue the sheet to the dark blue background. "
    "It's easy to tell the depth of a well. "
    "These days a chicken leg is a rare dish. "
    "Rice is often served in round bowls."
)
LOSS_PERCENT = 5
MEDIA_PORTS = (34_000, 34_099)
CASES = [
    ("clean", 0, False),
    (f"{LOSS_PERCENT} % loss", LOSS_PERCENT, False),
    (f"{LOSS_PERCENT} % loss, talker FEC", LOSS_PERCENT, True),
]
BROWSER_CASE = "clean, Chromium talker"
# `[media.opus]` settings that change the mix encoder, as two_pass options.
MIX_OPTIONS = {
    "TUTTI_MEDIA_OPUS_MODE": "--mix-mode",
    "TUTTI_MEDIA_OPUS_BITRATE": "--mix-bitrate",
    "TUTTI_MEDIA_OPUS_COMPLEXITY": "--mix-complexity",
    "TUTTI_MEDIA_OPUS_BANDWIDTH": "--mix-bandwidth",
    "TUTTI_MEDIA_OPUS_FEC": "--mix-fec",
}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, base):
        self.base = base
        self.token = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("X-Auth-Token", self.token)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")


def offer(port):
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n"
    )


def answer_port(sdp):
    for line in sdp.splitlines():
        if line.startswith("m=audio "):
            return int(line.split()[1])
    raise RuntimeError(f"no m=audio in {sdp!r}")


def gst(pipeline, log):
    return subprocess.Popen(
        ["gst-launch-1.0", "-q", *pipeline.split()],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_server(tutti, work, browser):
    port = free_tcp_port()
    database = os.path.join(work, "tutti.db")
    env = dict(os.environ)
    env["TUTTI_MEDIA_PORT_FIRST"] = str(MEDIA_PORTS[0])
    env["TUTTI_MEDIA_PORT_LAST"] = str(MEDIA_PORTS[1])
    if browser:
        env["TUTTI_WEBRTC_LISTEN"] = f"127.0.0.1:{free_port()}"
    log = open(os.path.join(work, "tutti.log"), "w")
    server = subprocess.Popen(
        [tutti, "serve", "--listen", f"127.0.0.1:{port}", "--database", database],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    api = Api(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(api.base + "/healthz", timeout=1).read()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"tutti did not come up (see {log.name})")
            time.sleep(0.1)
    created = subprocess.run(
        [tutti, "accounts", "create", "quality", "--database", database],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = dict(line.split(": ", 1) for line in created.splitlines() if ": " in line)
    api.token = api.call("PUT", "/v2/api_auth", {"data": {"api_key": fields["api_key"]}})[
        "auth_token"
    ]
    api.account = f"/v2/accounts/{fields['account_id']}"
    return server, api


class Room:
    """A fresh conference with a listener (GStreamer's rtpjitterbuffer and opusdec) recording
    what it hears."""

    def __init__(self, api, work, name, listener_fmtp):
        self.api, self.work, self.name = api, work, name
        conference = api.call(
            "PUT",
            f"{api.account}/conferences",
            {"data": {"name": name, "play_entry_tone": False, "play_exit_tone": False,
                      "member": {"join_muted": False}}},
        )["data"]["id"]
        self.conference = conference
        self.participants = f"{api.account}/conferences/{conference}/participants"
        self.log = open(os.path.join(work, f"{name}.gst.log"), "w")
        listen = free_port()
        to_listener, self.listener_id = self.join(listen, listener_fmtp)
        self.raw = os.path.join(work, f"{name}.raw")
        # The listener records what it hears and sends silence, as a muted phone does.
        self.listener = gst(
        f"udpsrc port={listen} caps=application/x-rtp,media=audio,clock-rate=48000,"
        "encoding-name=OPUS,payload=111 ! rtpjitterbuffer latency=60 ! rtpopusdepay ! "
        "opusdec plc=true ! audioconvert ! audioresample ! "
            f"audio/x-raw,format=S16LE,rate=48000,channels=1 ! filesink location={self.raw} "
            "audiotestsrc is-live=true wave=silence ! audioconvert ! audioresample ! "
            "audio/x-raw,rate=48000,channels=1 ! opusenc ! rtpopuspay pt=111 ! "
            f"udpsink host=127.0.0.1 port={to_listener}",
            self.log,
        )

    def join(self, port, fmtp=None):
        """Joins an RTP participant receiving on `port`; where it sends to, and its id."""
        sdp = offer(port) + (f"a=fmtp:111 {fmtp}\r\n" if fmtp else "")
        data = self.api.call("PUT", self.participants,
                             {"data": {"sdp": sdp, "latching": False}})["data"]
        return answer_port(data["sdp"]), data["participant_id"]

    def ids(self):
        return [p["participant_id"] for p in self.api.call("GET", self.participants)["data"]]

    def finish(self):
        """Stops the listener, empties the room; the recording's path."""
        stop(self.listener)
        for participant in self.ids():
            try:
                self.api.call("PUT", f"{self.participants}/{participant}",
                              {"data": {"action": "kick"}})
            except urllib.error.HTTPError as error:
                if error.code != 404:  # 404: it has just left by itself
                    raise
        wav = os.path.join(self.work, f"{self.name}.wav")
        speech.raw2wav(self.raw, 48000, wav)
        return wav


def through_server(api, work, name, speech_wav, drops, talker_fec, listener_fmtp):
    """Plays the speech from a talker to a listener through a fresh conference; returns the
    recording's path."""
    room = Room(api, work, name, listener_fmtp)
    log = room.log
    to_talker, _ = room.join(free_port())
    relay_port = free_port()
    relay = subprocess.Popen(
        [sys.executable, speech.__file__, "relay", str(relay_port), str(to_talker), drops],
        stderr=log,
    )
    time.sleep(1.0)
    fec = f" inband-fec=true packet-loss-percentage={LOSS_PERCENT}" if talker_fec else ""
    talker = gst(
        f"filesrc location={speech_wav} ! wavparse ! audioconvert ! audioresample ! "
        f"audio/x-raw,rate=48000,channels=1 ! opusenc complexity=10{fec} ! "
        f"rtpopuspay pt=111 ! udpsink host=127.0.0.1 port={relay_port}",
        log,
    )
    talker.wait(timeout=120)
    time.sleep(1.0)
    stop(relay)
    return room.finish()


def through_browser(api, work, name, speech_wav):
    """Plays the speech from headless Chromium, its fake microphone, joined through the join
    page (WebRTC, Opus as the browser sends it) to the listener; returns the recording's
    path."""
    room = Room(api, work, name, None)
    # The microphone starts with the page; 3 s of silence first let the page join before the
    # speech begins (the recording is aligned with the speech before scoring), 5 s after it
    # keep Chromium, which plays the file in a loop, from starting it again while recording.
    samples, rate = speech.read_wav(speech_wav)
    talker_wav = os.path.join(work, f"{name}.talker.wav")
    speech.write_wav(talker_wav, np.concatenate([np.zeros(3 * rate), samples,
                                                 np.zeros(5 * rate)]), rate)
    profile = os.path.join(work, f"{name}.chromium")
    url = f"{api.base}/join/{room.conference}#token={api.token}&name=Talker"
    browser = subprocess.Popen(
        ["chromium", "--headless=new", "--use-fake-ui-for-media-stream",
         "--use-fake-device-for-media-stream",
         f"--use-file-for-fake-audio-capture={talker_wav}",
         "--autoplay-policy=no-user-gesture-required", "--no-first-run",
         f"--user-data-dir={profile}"]
        + (["--no-sandbox"] if os.getuid() == 0 else []) + [url],
        stdout=subprocess.DEVNULL,
        stderr=room.log,
    )
    try:
        deadline = time.monotonic() + 20
        while len(room.ids()) < 2:
            if time.monotonic() > deadline or browser.poll() is not None:
                raise RuntimeError(f"the browser did not join {url} (see {room.log.name})")
            time.sleep(0.1)
        time.sleep(len(samples) / rate + 3 + 1.0)
    finally:
        stop(browser)
    return room.finish()


def floor(two_pass, work, name, speech_wav, drops, talker_fec, listener_fmtp):
    out = os.path.join(work, f"{name}.floor.wav")
    args = [two_pass, speech_wav, out, "--drops", drops]
    if listener_fmtp:
        args += ["--listener-fmtp", listener_fmtp]
    if talker_fec:
        args.append("--talker-fec")
    for variable, option in MIX_OPTIONS.items():
        if variable in os.environ:
            args += [option, os.environ[variable]]
    subprocess.run(args, check=True, capture_output=True)
    return out


def whole(label, speech_wav, run):
    """The recording of `run()`, run again when it comes out shorter than the speech: the
    machine stalled (other work starved the server, GStreamer or the browser)."""
    for _ in range(3):
        heard = run()
        if len(speech.read_wav(heard)[0]) >= len(speech.read_wav(speech_wav)[0]):
            break
        print(f"  {label}: recording cut short, again", file=sys.stderr)
    return heard


def main(args):
    if len(args) < 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    tutti, two_pass, work = args[:3]
    seeds = int(args[args.index("--seeds") + 1]) if "--seeds" in args else 3
    browser = "--browser" in args
    listener_fmtp = os.environ.get("QUALITY_LISTENER_FMTP")
    spoken = os.path.join(work, "espeak.wav")
    subprocess.run(["espeak-ng", "-w", spoken, TEXT], check=True)
    speech_wav = os.path.join(work, "speech.wav")
    speech.prepare(spoken, speech_wav)

    server, api = start_server(tutti, work, browser)
    results = []
    try:
        for label, loss, talker_fec in CASES:
            served, floors = [], []
            for seed in range(1, (seeds if loss else 1) + 1):
                name = f"{label.replace(' ', '').replace('%', 'pc').replace(',', '-')}-{seed}"
                drops = os.path.join(work, f"drops-{seed}-{loss}.txt")
                speech.drops(seed, loss, 5000, drops)
                heard = whole(f"{label}, seed {seed}", speech_wav, lambda: through_server(
                    api, work, name, speech_wav, drops, talker_fec, listener_fmtp))
                served.append(speech.pesq_wb(speech_wav, heard))
                floors.append(
                    speech.pesq_wb(speech_wav, floor(two_pass, work, name, speech_wav, drops,
                                                      talker_fec, listener_fmtp)))
                print(f"  {label}, seed {seed}: tutti {served[-1]:.2f}, floor {floors[-1]:.2f}",
                      file=sys.stderr)
            results.append((label, served, floors))
        if browser:
            heard = whole(BROWSER_CASE, speech_wav,
                          lambda: through_browser(api, work, "browser", speech_wav))
            served = speech.pesq_wb(speech_wav, heard)
            print(f"  {BROWSER_CASE}: tutti {served:.2f}", file=sys.stderr)
            results.append((BROWSER_CASE, [served], []))
    finally:
        stop(server)

    with open(os.path.join(work, "tutti.log")) as log:
        overruns = sum("tick overran" in line for line in log)
    print(f"PESQ-WB (MOS-LQO), mean over seeds; work files in {work}")
    if overruns:
        print(f"(the server's mixer ticks overran {overruns} times: the machine was busy)")
    print(f"{'case':<26}{'tutti':>8}{'floor':>8}{'runs':>6}")
    for label, served, floors in results:
        floor_text = f"{sum(floors) / len(floors):.2f}" if floors else "-"
        print(f"{label:<26}{sum(served) / len(served):>8.2f}{floor_text:>8}{len(served):>6}")


if __name__ == "__main__":
    main(sys.argv[1:])
