// The 3D avatar page: the glTF head of /avatar/head.glb, driven by the WebSocket's ARKit blendshape frames
// ({"type": "motion", "weights": [52], "head": [yaw, pitch, roll], ...}; see talkface.export.live).
import {
  AmbientLight, Box3, Color, DirectionalLight, Euler, GLTFLoader, PerspectiveCamera, Quaternion, Scene,
  Vector3, WebGLRenderer,
} from "/static/three-gltf.min.js";

const RATE = 16000; // Hz, the audio sent
const CHUNK = 320; // samples per message (20 ms)
const PLAY_DELAY = 0.5; // s: playback waits this long, so that motion frames arrive before their time
const $ = (id) => document.getElementById(id);

const canvas = $("head");
const renderer = new WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
const scene = new Scene();
scene.background = new Color(0x20242a);
scene.add(new AmbientLight(0xffffff, 1.2));
const sun = new DirectionalLight(0xffffff, 1.5);
sun.position.set(0.3, 0.5, 1);
scene.add(sun);
const camera = new PerspectiveCamera(30, 1, 0.01, 10);

let head = null; // the node that turns
let face = null; // the mesh with the morph targets
let names = []; // blendshape names of the motion frames, from the ready message
const frames = []; // motion frames waiting for their time
let clock = null; // {ctx, start}: the audio's clock
let ws = null;
window.avatar3d = { received: 0, applied: 0, maxJawOpen: 0, status: "loading" }; // for tests and the curious

async function loadHead(textured) {
  const gltf = await new GLTFLoader().loadAsync(`/avatar/head.glb${textured ? "?portrait=bundled" : ""}`);
  if (head) scene.remove(head.parent === scene ? head : head.parent);
  scene.add(gltf.scene);
  head = gltf.scene.getObjectByName("head");
  gltf.scene.traverse((o) => { if (o.isMesh) face = o; });
  const box = new Box3().setFromObject(gltf.scene);
  const centre = box.getCenter(new Vector3());
  const size = box.getSize(new Vector3()).length();
  camera.position.set(centre.x, centre.y, centre.z + size * 1.6);
  camera.lookAt(centre);
  $("status").textContent = "ready: choose a voice file";
  window.avatar3d.status = "ready";
}

function apply(frame) {
  if (!face) return;
  const dict = face.morphTargetDictionary;
  names.forEach((name, i) => {
    const k = dict[name];
    if (k !== undefined) face.morphTargetInfluences[k] = frame.weights[i];
  });
  // talkface's angles (degrees): yaw > 0 turns to the viewer's right, pitch > 0 nods down, roll > 0 tilts
  // clockwise; in glTF's axes (y up, z to the viewer) that is Rz(-roll) Ry(-yaw) Rx(pitch).
  const [yaw, pitch, roll] = frame.head.map((d) => (d * Math.PI) / 180);
  head.quaternion.copy(new Quaternion().setFromEuler(new Euler(pitch, -yaw, -roll, "ZYX")));
  const open = frame.weights[names.indexOf("jawOpen")];
  window.avatar3d.applied += 1;
  window.avatar3d.maxJawOpen = Math.max(window.avatar3d.maxJawOpen, open);
  $("weights").textContent = `t ${frame.timestamp.toFixed(2)} s  jawOpen ${open.toFixed(2)}`;
}

function tick() {
  if (clock && frames.length) {
    const t = clock.ctx.currentTime - clock.start;
    let latest = null;
    while (frames.length && frames[0].timestamp <= t) latest = frames.shift();
    if (latest) apply(latest);
  }
  renderer.render(scene, camera);
  requestAnimationFrame(tick);
}

function connect() {
  return new Promise((resolve, reject) => {
    ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    ws.onopen = () => ws.send(JSON.stringify({
      type: "start", portrait: "bundled", sample_rate: RATE, format: "f32", channels: 1,
      options: { size: 128, fps: 30 }, motion: "arkit", video: false,
    }));
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      const msg = JSON.parse(event.data);
      if (msg.type === "ready") { names = msg.blendshapes; resolve(); }
      else if (msg.type === "motion") { frames.push(msg); window.avatar3d.received += 1; }
      else if (msg.type === "error" || msg.type === "busy") { $("status").textContent = msg.message; reject(msg); }
      else if (msg.type === "flushed") { $("status").textContent = "done"; window.avatar3d.status = "done"; }
    };
    ws.onerror = () => reject(new Error("the WebSocket failed"));
  });
}

async function play(file) {
  const ctx = new AudioContext();
  const decoded = await ctx.decodeAudioData(await file.arrayBuffer());
  const off = new OfflineAudioContext(1, Math.ceil(decoded.duration * RATE), RATE);
  const src = off.createBufferSource();
  src.buffer = decoded;
  src.connect(off.destination);
  src.start();
  const pcm = (await off.startRendering()).getChannelData(0);
  if (ws) ws.close();
  frames.length = 0;
  await connect();
  const player = ctx.createBufferSource();
  player.buffer = decoded;
  player.connect(ctx.destination);
  clock = { ctx, start: ctx.currentTime + PLAY_DELAY };
  player.start(clock.start);
  $("status").textContent = "streaming";
  let sent = 0;
  const timer = setInterval(() => { // at the pace of real time, a little ahead
    const due = (ctx.currentTime - clock.start + PLAY_DELAY + 0.2) * RATE;
    while (sent < pcm.length && sent < due) {
      ws.send(pcm.slice(sent, sent + CHUNK).buffer);
      sent += CHUNK;
    }
    if (sent >= pcm.length) { clearInterval(timer); ws.send(JSON.stringify({ type: "flush" })); }
  }, 20);
}

$("audio-file").addEventListener("change", (e) => { if (e.target.files[0]) play(e.target.files[0]); });
$("textured").addEventListener("change", (e) => loadHead(e.target.checked));
loadHead($("textured").checked).catch((e) => { $("status").textContent = `cannot load the head: ${e}`; });
requestAnimationFrame(tick);
