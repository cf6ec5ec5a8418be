// talkface live page, WebRTC mode: the face comes back as a video track and the voice as an audio track, in
// sync, played by the browser itself (no frame drawing, no playback scheduling here). The voice to animate is
// the microphone (an audio track) or an audio file sent whole over a data channel, as a voice agent sends its
// reply; "Interrupt" barges in. Protocol: talkface/stream/webrtc.py. No external assets.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const rtc = { state: "idle", framesDecoded: 0, audioPlayed: 0, messages: [], error: null };
  window.talkface = Object.assign(window.talkface || {}, { rtc });
  let peer = null; // { pc, channel, stream }

  function say(text, isError = false) {
    rtc.state = text;
    if (isError) rtc.error = text;
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", isError);
  }

  function showVideo(on) {
    $("rtc-video").hidden = !on;
    $("avatar").hidden = on;
  }

  function gathered(pc) {
    return new Promise((done) => {
      if (pc.iceGatheringState === "complete") return done();
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") done();
      });
    });
  }

  async function start(mic, extra = {}) {
    stop();
    say("connecting (WebRTC)...");
    const pc = new RTCPeerConnection(); // no STUN/TURN: the page is served by the server it talks to
    const channel = pc.createDataChannel("talkface");
    const media = new MediaStream();
    const video = $("rtc-video");
    video.srcObject = media;
    video.muted = mic && !$("monitor").checked; // the microphone's own voice comes back: heard only if asked
    pc.ontrack = (ev) => media.addTrack(ev.track);
    pc.addTransceiver("video", { direction: "recvonly" });
    let stream = null;
    if (mic) {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      pc.addTrack(stream.getAudioTracks()[0], stream);
    } else {
      pc.addTransceiver("audio", { direction: "recvonly" });
    }
    peer = { pc, channel, stream };
    const opened = new Promise((resolve) => { channel.onopen = resolve; });
    channel.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      rtc.messages.push(m);
      if (m.type === "error") say(m.message, true);
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed" || pc.connectionState === "closed") say(`WebRTC ${pc.connectionState}`);
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const t = window.talkface;
    const body = {
      sdp: pc.localDescription.sdp, type: "offer", portrait: t.portrait ? t.portrait() : "bundled",
      options: t.options ? t.options() : {}, ...extra,
    };
    const r = await fetch("/webrtc/offer", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const answer = await r.json().catch(() => ({ error: `offer failed (${r.status})` }));
    if (!r.ok) throw new Error(answer.error || `offer failed (${r.status})`);
    await pc.setRemoteDescription(answer);
    await opened;
    showVideo(true);
    await video.play().catch(() => {}); // autoplay rules: the click that started this allows it
    $("rtc-stop").disabled = false;
    $("rtc-interrupt").disabled = false;
    watch(pc);
    return channel;
  }

  function watch(pc) {
    const timer = setInterval(async () => {
      if (!peer || peer.pc !== pc) return clearInterval(timer);
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video") rtc.framesDecoded = s.framesDecoded || 0;
        if (s.type === "inbound-rtp" && s.kind === "audio") rtc.audioPlayed = s.totalSamplesReceived || 0;
      });
      $("frames").textContent = String(rtc.framesDecoded);
    }, 500);
  }

  async function startMic() {
    try {
      await start(true);
      say("WebRTC: listening, speak");
    } catch (e) {
      stop();
      say(e.message || String(e), true);
    }
  }

  // An audio file, sent whole over the data channel as s16 PCM (as an agent sends a reply): the server plays
  // it back on the audio track at the pace of real time, with the face in sync.
  async function startFile(file) {
    try {
      const ctx = new AudioContext();
      const audio = await ctx.decodeAudioData(await file.arrayBuffer()).finally(() => ctx.close());
      const rate = audio.sampleRate;
      const channel = await start(false, { sample_rate: rate, format: "s16", channels: 1 });
      const pcm = new Int16Array(audio.length);
      for (let c = 0; c < audio.numberOfChannels; c++) {
        const x = audio.getChannelData(c);
        for (let i = 0; i < x.length; i++) pcm[i] += Math.round(32767 * Math.max(-1, Math.min(1, x[i])) / audio.numberOfChannels);
      }
      const step = Math.floor(rate / 2); // half-second messages (the server takes up to 2 s each)
      for (let i = 0; i < pcm.length; i += step) channel.send(pcm.slice(i, i + step).buffer);
      say(`WebRTC: playing ${file.name}`);
    } catch (e) {
      stop();
      say(e.message || String(e), true);
    }
  }

  function stop() {
    if (!peer) return;
    const { pc, stream } = peer;
    peer = null;
    if (stream) stream.getTracks().forEach((t) => t.stop());
    pc.close();
    showVideo(false);
    $("rtc-stop").disabled = true;
    $("rtc-interrupt").disabled = true;
    say("stopped");
  }

  function init() {
    $("rtc-mic").addEventListener("click", startMic);
    $("rtc-file").addEventListener("change", (ev) => {
      const file = ev.target.files[0];
      ev.target.value = "";
      if (file) startFile(file);
    });
    $("rtc-interrupt").addEventListener("click", () => {
      if (peer && peer.channel.readyState === "open") peer.channel.send(JSON.stringify({ type: "interrupt" }));
    });
    $("rtc-stop").addEventListener("click", stop);
    $("emotion").addEventListener("change", () => {
      if (peer && peer.channel.readyState === "open") {
        peer.channel.send(JSON.stringify({ type: "emotion", emotion: $("emotion").value }));
      }
    });
    if (!window.isSecureContext) $("rtc-mic").disabled = true;
  }

  init();
})();
