"""WebRTC load: starts `talkface serve` on a free loopback port, connects N aiortc peers that each send 12 s
of the bundled speech over a data channel (as an agent sends a reply), and prints the server's CPU (share of
one core, its session processes included), each peer's received frame rate over 8 s, and the load average.

    .venv/bin/python scripts/webrtc_load.py [--size 512] [--peers 1] [--in-process]

--in-process: the server runs its sessions in its own process (--no-session-processes), as before issue 18.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

import talkface
from talkface.audio.load import load_audio
from talkface.stream import webrtc

SECONDS = 12


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its live children (the session processes), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().split(")")[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for child in pathlib.Path(f"/proc/{pid}/task").glob("*/children"):
        for c in child.read_text().split():
            with contextlib.suppress(OSError):
                total += cpu_seconds(int(c))
    return total


async def peer(url: str, size: int, pcm: np.ndarray):
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel("talkface")
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    frames: list[float] = []

    async def read(track):
        while True:
            try:
                await track.recv()
            except Exception:
                return
            if track.kind == "video":
                frames.append(time.monotonic())

    pc.on("track", lambda track: asyncio.ensure_future(read(track)))
    opened = asyncio.Event()
    channel.on("open", opened.set)
    await pc.setLocalDescription(await pc.createOffer())
    body = {"sdp": pc.localDescription.sdp, "type": "offer", "options": {"size": size}, "sample_rate": 16000}
    request = urllib.request.Request(
        f"{url}/webrtc/offer",
        json.dumps({**body, "format": "s16"}).encode(),
        {"Content-Type": "application/json"},
    )
    answer = json.loads(await asyncio.to_thread(lambda: urllib.request.urlopen(request).read()))
    await pc.setRemoteDescription(RTCSessionDescription(**answer))
    await asyncio.wait_for(opened.wait(), 20)
    for i in range(0, len(pcm), 8000):
        channel.send(pcm[i : i + 8000].tobytes())
    return pc, frames


async def run(url: str, pid: int, size: int, n: int) -> None:
    speech = load_audio(talkface.assets.asset_path("speech.flac")).samples
    x = np.tile(speech, 1 + int(SECONDS * 16000 / len(speech)))[: SECONDS * 16000]
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    peers = await asyncio.gather(*[peer(url, size, pcm) for _ in range(n)])
    await asyncio.sleep(2)
    c0, t0 = cpu_seconds(pid), time.monotonic()
    before = [len(frames) for _, frames in peers]
    await asyncio.sleep(8)
    c1, t1 = cpu_seconds(pid), time.monotonic()
    fps = [round((len(frames) - b) / (t1 - t0), 1) for (_, frames), b in zip(peers, before, strict=True)]
    load = os.getloadavg()[0]
    print(
        f"{n} peer(s) at {size}x{size}: server CPU {100 * (c1 - c0) / (t1 - t0):.0f}% of one core; "
        f"fps {fps}; load average {load:.2f}"
    )
    for pc, _ in peers:
        await pc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--peers", type=int, default=1)
    parser.add_argument("--in-process", action="store_true", help="sessions in the server's process")
    args = parser.parse_args()
    webrtc._install_ice_hosts("127.0.0.1")  # these peers gather on loopback, as the server does
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "talkface.cli", "serve", "--port", str(port)]
    cmd += ["--max-sessions", str(max(3, args.peers))]
    if args.in_process:
        cmd.append("--no-session-processes")
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("talkface serve did not start") from None
                time.sleep(0.3)
        asyncio.run(run(url, server.pid, args.size, args.peers))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
