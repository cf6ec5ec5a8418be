// talkface live page: sends microphone or file audio to /ws as 16-bit PCM and draws the frames that come
// back. Protocol: see talkface/stream/server.py. No external assets.
"use strict";

const CHUNK_SECONDS = 0.02; // audio message length (the worklet's block)
const JITTER_MS = 120; // playback delay beyond the first frame's latency, so later frames arrive in time
const MAX_MONITOR_DELAY_S = 3; // longest delay of the monitored microphone

const $ = (id) => document.getElementById(id);

// Read by the browser test and handy in the console.
const stats = {
  status: "idle",
  framesReceived: 0,
  framesDrawn: 0,
  lastTimestamp: -1,
  latencyMedianMs: null,
  audioDelayMs: null,
  fps: 0,
  error: null,
};
window.talkface = { stats };

let portraitId = "bundled";
let live = null; // the running Live, if any
// For the WebRTC mode (webrtc.js): the portrait and options chosen on the page.
window.talkface.portrait = () => portraitId;
window.talkface.options = () => options();

function setStatus(text, isError = false) {
  stats.status = text;
  if (isError) stats.error = text;
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function median(values) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function options() {
  return {
    size: Number($("size").value),
    emotion: $("emotion").value,
    motion_scale: Number($("motion-scale").value),
    generator: $("generator").value,
  };
}

// Opens the socket, sends start and resolves with [socket, ready message]; rejects with a readable error.
function connect(sampleRate) {
  return new Promise((resolve, reject) => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws`);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      ws.send(JSON.stringify({
        type: "start", portrait: portraitId, sample_rate: sampleRate, format: "s16", channels: 1,
        options: options(),
      }));
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== "string") return;
      const m = JSON.parse(ev.data);
      if (m.type === "ready") resolve([ws, m]);
      else if (m.type === "busy" || m.type === "error") reject(new Error(m.message));
    };
    ws.onerror = () => reject(new Error("cannot reach the server"));
    ws.onclose = (ev) => reject(new Error(ev.reason || `connection closed (${ev.code})`));
  });
}

// One live run: a socket, an audio source and the frames on the canvas. Stream time t (seconds of audio
// sent) is heard at wall time t0 + 1000 t + delay (performance.now() ms); frames are drawn at that time.
class Live {
  constructor(ws, ready, ctx) {
    this.ws = ws;
    this.fps = ready.fps;
    this.ctx = ctx;
    this.rate = ctx.sampleRate;
    this.sent = 0; // samples sent
    this.sendLog = []; // [stream seconds at the end of a chunk, performance.now() when it was sent]
    this.t0 = null; // wall time (ms) of stream time 0
    this.delay = null; // ms from sending audio to hearing it; fixed by the first frame
    this.synced = false; // true: draw each frame when its audio is heard; false: as soon as it arrives
    this.pending = []; // decoded frames waiting for their time
    this.latencies = [];
    this.drawTimes = [];
    this.decoding = Promise.resolve();
    this.stopped = false;
    this.onFirstFrame = null; // (delay ms) => void, set by the audio source
    this.onFlushed = null;
    this.canvas = $("avatar");
    this.canvas.width = ready.width;
    this.canvas.height = ready.height;
    this.g = this.canvas.getContext("2d");
    ws.onmessage = (ev) => this.receive(ev);
    ws.onclose = (ev) => {
      if (!this.stopped) {
        setStatus(ev.reason ? `closed: ${ev.reason}` : `connection closed (${ev.code})`, ev.code !== 1000);
        stopLive();
      }
    };
    this.raf = requestAnimationFrame(() => this.tick());
  }

  sendPcm(x) {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    if (this.t0 === null) this.t0 = performance.now() - 1000 * x.length / this.rate;
    const pcm = new Int16Array(x.length);
    for (let i = 0; i < x.length; i++) pcm[i] = Math.max(-32768, Math.min(32767, Math.round(x[i] * 32767)));
    this.ws.send(pcm.buffer);
    this.sent += x.length;
    this.sendLog.push([this.sent / this.rate, performance.now()]);
    if (this.sendLog.length > 6000) this.sendLog.splice(0, 3000);
  }

  flush() {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "flush" }));
  }

  // performance.now() when the audio at stream time t left the page, or null if unknown.
  sentAt(t) {
    const log = this.sendLog;
    let lo = 0, hi = log.length - 1;
    if (hi < 0 || log[hi][0] < t) return null;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (log[mid][0] >= t) hi = mid; else lo = mid + 1;
    }
    return log[lo][1];
  }

  receive(ev) {
    if (typeof ev.data === "string") {
      const m = JSON.parse(ev.data);
      if (m.type === "flushed" && this.onFlushed) this.onFlushed();
      else if (m.type === "error" || m.type === "busy") setStatus(m.message, true);
      else if (m.type === "behind") {
        // the server is too busy for real time: it skipped frames to stay live (see server.py)
        stats.skipped = (stats.skipped || 0) + m.skipped;
        setStatus(`server busy: ${stats.skipped} frames skipped to stay live (${m.late.toFixed(1)} s late)`);
      }
      return;
    }
    const view = new DataView(ev.data);
    const ts = view.getFloat64(8, true);
    const now = performance.now();
    const sent = this.sentAt(ts);
    if (sent !== null) {
      this.latencies.push(now - sent);
      if (this.latencies.length > 100) this.latencies.shift();
      stats.latencyMedianMs = median(this.latencies);
    }
    stats.framesReceived++;
    stats.lastTimestamp = ts;
    if (this.delay === null && this.t0 !== null) {
      // The first frame fixes the audio delay: its lateness plus a margin for the jitter of later ones.
      this.delay = now - this.t0 - 1000 * ts + JITTER_MS;
      stats.audioDelayMs = Math.round(this.delay);
      if (this.onFirstFrame) this.onFirstFrame(this.delay);
    }
    const blob = new Blob([new Uint8Array(ev.data, 16)], { type: "image/jpeg" });
    this.decoding = this.decoding
      .then(() => createImageBitmap(blob))
      .then((bitmap) => {
        if (this.synced) this.pending.push({ ts, bitmap });
        else this.draw(bitmap);
      })
      .catch((e) => setStatus(`bad frame: ${e}`, true));
  }

  draw(bitmap) {
    this.g.drawImage(bitmap, 0, 0, this.canvas.width, this.canvas.height);
    bitmap.close();
    stats.framesDrawn++;
    const now = performance.now();
    this.drawTimes.push(now);
    while (this.drawTimes.length && this.drawTimes[0] < now - 1000) this.drawTimes.shift();
  }

  // Stream time now being heard (seconds).
  playhead() {
    if (this.t0 === null || this.delay === null) return -Infinity;
    return (performance.now() - this.t0 - this.delay) / 1000;
  }

  tick() {
    if (this.stopped) return;
    if (this.synced) {
      const p = this.playhead();
      let show = null;
      while (this.pending.length && this.pending[0].ts <= p) {
        if (show) show.bitmap.close();
        show = this.pending.shift();
      }
      if (show) this.draw(show.bitmap);
    }
    stats.fps = this.drawTimes.length;
    $("frames").textContent = stats.framesReceived;
    $("fps").textContent = String(stats.fps);
    $("latency").textContent = stats.latencyMedianMs === null ? "-"
      : `${Math.round(stats.latencyMedianMs)} ms` + (this.synced ? ` (audio delayed ${stats.audioDelayMs} ms)` : "");
    this.raf = requestAnimationFrame(() => this.tick());
  }

  close() {
    this.stopped = true;
    cancelAnimationFrame(this.raf);
    for (const f of this.pending) f.bitmap.close();
    this.pending = [];
    if (this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
  }
}

// ---- audio sources ---------------------------------------------------------------------------------

async function startMicrophone() {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  const ctx = new AudioContext();
  await ctx.audioWorklet.addModule("/static/worklet.js");
  let ws, ready;
  try {
    [ws, ready] = await connect(ctx.sampleRate);
  } catch (e) {
    stream.getTracks().forEach((t) => t.stop());
    ctx.close();
    throw e;
  }
  const run = new Live(ws, ready, ctx);
  const source = ctx.createMediaStreamSource(stream);
  const tap = new AudioWorkletNode(ctx, "pcm-tap");
  const mute = ctx.createGain();
  mute.gain.value = 0; // the tap must reach the destination to be pulled; nothing is heard through it
  source.connect(tap).connect(mute).connect(ctx.destination);
  tap.port.onmessage = (ev) => run.sendPcm(ev.data);
  if ($("monitor").checked) {
    // Hear yourself delayed by the measured latency, with the face in sync (headphones, or it echoes).
    run.synced = true;
    const delayNode = ctx.createDelay(MAX_MONITOR_DELAY_S);
    const gain = ctx.createGain();
    gain.gain.value = 0;
    source.connect(delayNode).connect(gain).connect(ctx.destination);
    run.onFirstFrame = (ms) => {
      delayNode.delayTime.value = Math.min(ms / 1000, MAX_MONITOR_DELAY_S);
      gain.gain.value = 1;
    };
  }
  run.cleanup = () => {
    stream.getTracks().forEach((t) => t.stop());
    ctx.close();
  };
  setStatus("listening: speak");
  return run;
}

async function startFile(file) {
  const ctx = new AudioContext();
  let audio;
  try {
    audio = await ctx.decodeAudioData(await file.arrayBuffer());
  } catch (e) {
    ctx.close();
    throw new Error(`cannot decode ${file.name} as audio`);
  }
  const mono = new Float32Array(audio.length);
  for (let c = 0; c < audio.numberOfChannels; c++) {
    const x = audio.getChannelData(c);
    for (let i = 0; i < x.length; i++) mono[i] += x[i] / audio.numberOfChannels;
  }
  const [ws, ready] = await connect(ctx.sampleRate).catch((e) => { ctx.close(); throw e; });
  const run = new Live(ws, ready, ctx);
  run.synced = true;
  // Send in real time, as a microphone would; play the file back once the first frame tells the latency.
  const chunk = Math.round(CHUNK_SECONDS * ctx.sampleRate);
  const start = performance.now();
  const timer = setInterval(() => {
    const due = Math.min(mono.length, Math.ceil(((performance.now() - start) / 1000 + CHUNK_SECONDS) * ctx.sampleRate));
    while (run.sent < due) run.sendPcm(mono.subarray(run.sent, Math.min(run.sent + chunk, due)));
    if (run.sent >= mono.length) {
      clearInterval(timer);
      run.flush();
    }
  }, CHUNK_SECONDS * 1000);
  run.onFirstFrame = (ms) => {
    const player = ctx.createBufferSource();
    player.buffer = audio;
    player.connect(ctx.destination);
    const at = ctx.currentTime + (run.t0 + ms - performance.now()) / 1000;
    player.start(Math.max(at, ctx.currentTime), Math.max(0, ctx.currentTime - at));
    player.onended = () => { if (live === run) { setStatus("done"); stopLive(); } };
    run.player = player;
  };
  run.cleanup = () => {
    clearInterval(timer);
    ctx.close();
  };
  setStatus(`playing ${file.name}`);
  return run;
}

// ---- page wiring -----------------------------------------------------------------------------------

function setRunning(running, which) {
  $("mic").disabled = running;
  $("audio-file").disabled = running;
  $("stop").disabled = !running;
  $("mic").classList.toggle("active", running && which === "mic");
}

async function begin(which, starter) {
  if (live) stopLive();
  setRunning(true, which);
  setStatus("starting...");
  try {
    live = await starter();
  } catch (e) {
    setRunning(false);
    setStatus(e.message || String(e), true);
  }
}

function stopLive() {
  const run = live;
  live = null;
  setRunning(false);
  if (!run) return;
  if (run.cleanup) run.cleanup();
  run.close();
  if (stats.status.startsWith("listening") || stats.status.startsWith("playing")) setStatus("stopped");
}

async function uploadPortrait(file) {
  const note = $("portrait-status");
  note.textContent = "checking the face...";
  note.classList.remove("error");
  const form = new FormData();
  form.append("image", file);
  try {
    const r = await fetch("/portraits", { method: "POST", body: form });
    const body = await r.json().catch(() => ({ error: `upload failed (${r.status})` }));
    if (!r.ok) throw new Error(body.error || `upload failed (${r.status})`);
    portraitId = body.id;
    $("portrait-upload-choice").checked = true;
    $("portrait-preview").src = URL.createObjectURL(file);
    note.textContent = `${file.name}: ${body.width}x${body.height}, face found`;
  } catch (e) {
    portraitId = "bundled";
    document.querySelector('input[name="portrait"][value="bundled"]').checked = true;
    $("portrait-preview").src = "/portraits/bundled";
    note.textContent = e.message;
    note.classList.add("error");
  }
}

function init() {
  $("mic").addEventListener("click", () => begin("mic", startMicrophone));
  $("stop").addEventListener("click", () => {
    if (live) live.flush();
    stopLive();
  });
  $("audio-file").addEventListener("change", (ev) => {
    const file = ev.target.files[0];
    ev.target.value = "";
    if (file) begin("file", () => startFile(file));
  });
  // While live, a new emotion eases the running face into it (the "emotion" message) instead of waiting
  // for the next start.
  $("emotion").addEventListener("change", () => {
    if (live && live.ws.readyState === WebSocket.OPEN) {
      live.ws.send(JSON.stringify({ type: "emotion", emotion: $("emotion").value }));
    }
  });
  $("portrait-file").addEventListener("change", (ev) => {
    if (ev.target.files[0]) uploadPortrait(ev.target.files[0]);
  });
  for (const radio of document.querySelectorAll('input[name="portrait"]')) {
    radio.addEventListener("change", () => {
      if (radio.value === "bundled" && radio.checked) {
        portraitId = "bundled";
        $("portrait-preview").src = "/portraits/bundled";
      } else if (radio.checked) {
        $("portrait-file").click();
      }
    });
  }
  if (!window.isSecureContext) {
    $("mic").disabled = true;
    setStatus("the microphone needs https or localhost; audio files still work");
  }
}

init();
