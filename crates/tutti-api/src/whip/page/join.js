// tutti's join page: joins the conference named in the path over WHIP, plays the room, shows
// the roster (from the session's websocket) and has mute, leave and a level meter of what it
// hears. No dependencies, no build step.
//
// window.tutti = { pc, localStream, remoteStream, state, participantId, level } where state is
// one of "idle", "joining", "joined", "left", "removed", "failed".
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const tutti = {
    pc: null,
    localStream: null,
    remoteStream: null,
    state: 'idle',
    participantId: null,
    level: 0,
  };
  window.tutti = tutti;

  // /prefix/join/{conference_id}: the API lives under the same prefix.
  const path = location.pathname;
  const at = path.lastIndexOf('/join/');
  const prefix = path.slice(0, at);
  const conferenceId = decodeURIComponent(path.slice(at + '/join/'.length).split('/')[0]);
  const api = (rest) => new URL(prefix + rest, location.href);

  let session = null; // URL of the WHIP session
  let socket = null;
  let muted = false;
  let meter = null;

  const setStatus = (text) => { $('status').textContent = text; };
  const setState = (state) => {
    tutti.state = state;
    document.body.dataset.state = state;
    const inCall = state === 'joined';
    $('call').hidden = !inCall;
    $('join-form').hidden = inCall || state === 'joining';
    $('join').disabled = state === 'joining';
  };

  async function explain(response) {
    const text = (await response.text()).trim();
    try {
      const parsed = JSON.parse(text);
      if (parsed && parsed.error) return parsed.error;
    } catch (_) { /* plain text */ }
    return text || `the server answered ${response.status}`;
  }

  function gatheringDone(pc, ms) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState === 'complete') {
          pc.removeEventListener('icegatheringstatechange', done);
          resolve();
        }
      };
      pc.addEventListener('icegatheringstatechange', done);
      setTimeout(resolve, ms); // enough candidates by then; the server is ICE-lite
    });
  }

  function startMeter(stream) {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context || meter) return;
    const context = new Context();
    const source = context.createMediaStreamSource(stream);
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    meter = { context, analyser, running: true };
    const tick = () => {
      if (!meter || !meter.running) return;
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
      const rms = Math.sqrt(sum / samples.length);
      tutti.level = rms;
      $('level').value = Math.min(1, rms * 4);
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    context.resume().catch(() => {});
  }

  function stopMeter() {
    if (!meter) return;
    meter.running = false;
    meter.context.close().catch(() => {});
    meter = null;
    tutti.level = 0;
    $('level').value = 0;
  }

  function renderRoster(message) {
    tutti.participantId = message.you;
    const list = $('roster');
    const items = message.participants.map((p) => {
      const li = document.createElement('li');
      li.dataset.participantId = String(p.participant_id);
      li.classList.toggle('talking', !!p.talking);
      li.classList.toggle('muted', !!p.muted);
      li.classList.toggle('you', !!p.you);
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = p.name || `Caller ${p.participant_id}`;
      li.append(name);
      const tags = [];
      if (p.you) tags.push('you');
      if (p.moderator) tags.push('moderator');
      if (p.muted) tags.push('muted');
      if (tags.length) {
        const tag = document.createElement('span');
        tag.className = 'tag';
        tag.textContent = tags.join(' · ');
        li.append(tag);
      }
      return li;
    });
    list.replaceChildren(...items);
    const me = message.participants.find((p) => p.you);
    if (me) showMuted(!!me.muted);
  }

  function showMuted(on) {
    muted = on;
    const button = $('mute');
    button.textContent = on ? 'Unmute' : 'Mute';
    button.setAttribute('aria-pressed', String(on));
    if (tutti.localStream) {
      for (const track of tutti.localStream.getAudioTracks()) track.enabled = !on;
    }
  }

  function openEvents() {
    const url = new URL(session.href + '/events');
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    socket = new WebSocket(url);
    socket.onmessage = (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch (_) { return; }
      if (message.type === 'roster') renderRoster(message);
      else if (message.type === 'removed') removed(message.reason);
    };
  }

  // Closes everything local; the server side is already gone or told separately.
  function hangUp() {
    if (socket) { socket.onmessage = null; socket.close(); socket = null; }
    if (tutti.pc) tutti.pc.close();
    if (tutti.localStream) for (const track of tutti.localStream.getTracks()) track.stop();
    stopMeter();
    $('room').srcObject = null;
  }

  function removed(reason) {
    if (tutti.state !== 'joined') return;
    hangUp();
    setState('removed');
    const why = {
      kick: 'You were removed from the conference.',
      hangup: 'You left the conference.',
      timeout: 'You were disconnected: no audio arrived for too long.',
      conference_ended: 'The conference has ended.',
      shutdown: 'The server is restarting. Please join again later.',
    };
    setStatus(why[reason] || 'You are no longer in the conference.');
  }

  function fail(text) {
    hangUp();
    setState('failed');
    setStatus(`Could not join: ${text}`);
  }

  async function join(credential, name) {
    if (tutti.state === 'joining' || tutti.state === 'joined') return;
    tutti.pc = null;
    tutti.participantId = null;
    setState('joining');
    setStatus('Asking for the microphone…');
    try {
      if (!window.isSecureContext || !navigator.mediaDevices) {
        throw new Error('the microphone needs a secure page (https:// or localhost)');
      }
      tutti.localStream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        video: false,
      });
      const config = await fetch(api(`/join/${encodeURIComponent(conferenceId)}/config.json`))
        .then((r) => (r.ok ? r.json() : {}))
        .catch(() => ({}));
      const pc = new RTCPeerConnection({
        iceServers: Array.isArray(config.ice_servers) ? config.ice_servers : [],
        bundlePolicy: 'max-bundle',
      });
      tutti.pc = pc;
      tutti.remoteStream = new MediaStream();
      pc.ontrack = (event) => {
        tutti.remoteStream.addTrack(event.track);
        const audio = $('room');
        audio.srcObject = tutti.remoteStream;
        audio.play().catch(() => setStatus('Tap anywhere to hear the room.'));
        startMeter(tutti.remoteStream);
      };
      pc.onconnectionstatechange = () => {
        if (tutti.pc !== pc || tutti.state !== 'joined') return;
        if (pc.connectionState === 'connected') setStatus('Connected.');
        else if (pc.connectionState === 'failed') fail('the connection to the server failed');
        else if (pc.connectionState === 'disconnected') setStatus('Reconnecting…');
      };
      for (const track of tutti.localStream.getAudioTracks()) {
        pc.addTransceiver(track, { direction: 'sendrecv', streams: [tutti.localStream] });
      }
      await pc.setLocalDescription(await pc.createOffer());
      await gatheringDone(pc, 2000);
      setStatus('Joining…');
      const whip = api(`/whip/${encodeURIComponent(conferenceId)}`);
      if (name) whip.searchParams.set('name', name);
      const response = await fetch(whip, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${credential}` },
        body: pc.localDescription.sdp,
      });
      if (response.status !== 201) throw new Error(await explain(response));
      session = new URL(prefix + response.headers.get('Location'), location.href);
      await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
      setState('joined');
      setStatus('Connecting…');
      showMuted(false);
      openEvents();
    } catch (error) {
      fail(error && error.message ? error.message : String(error));
    }
  }

  async function toggleMute() {
    if (!session) return;
    const on = !muted;
    showMuted(on);
    try {
      const response = await fetch(new URL(session.href + (on ? '/mute' : '/unmute')), { method: 'POST' });
      if (!response.ok) setStatus(`Could not ${on ? 'mute' : 'unmute'}: ${await explain(response)}`);
    } catch (_) {
      setStatus('Could not reach the server.');
    }
  }

  async function leave() {
    const url = session;
    session = null;
    hangUp();
    setState('left');
    setStatus('You left the conference.');
    if (url) await fetch(url, { method: 'DELETE' }).catch(() => {});
  }

  document.addEventListener('DOMContentLoaded', () => {
    setState('idle');
    $('join-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const credential = $('credential').value.trim();
      if (credential) join(credential, $('name').value.trim());
    });
    $('mute').addEventListener('click', toggleMute);
    $('leave').addEventListener('click', leave);
    // Autoplay needs a gesture in some browsers: any tap starts the room's sound.
    document.addEventListener('click', () => {
      $('room').play().catch(() => {});
      if (meter) meter.context.resume().catch(() => {});
    });
    window.addEventListener('pagehide', () => {
      if (session) fetch(session, { method: 'DELETE', keepalive: true }).catch(() => {});
    });

    // #pin=…&name=… or #token=…&name=…: join at once, and take the secret out of the address bar.
    const fragment = new URLSearchParams(location.hash.slice(1));
    const credential = fragment.get('token') || fragment.get('pin');
    const name = fragment.get('name') || '';
    if (name) $('name').value = name;
    if (credential) {
      history.replaceState(null, '', location.pathname + location.search);
      join(credential, name);
    }
  });
})();
