"""Probe a real `talkface serve` (uvicorn, loopback) as a hostile or careless client would (issue 17), and
measure the server's memory across sessions.

    .venv/bin/python scripts/server_probe.py [--cycles 30] [--size 256] [--port 8765]

Starts the server in a subprocess, then prints one line per probe: pinging clients that never start, a
decompression-bomb upload, a stalled upload body, a non-ASCII error reason, and the server's RSS after every
5 start/stream/close cycles (it should reach a plateau, not grow by the size of a session each time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import cv2
import numpy as np


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kb / 1024


def health(base: str) -> dict:
    with urllib.request.urlopen(f"{base}/health", timeout=5) as r:
        return json.load(r)


async def close_code(ws) -> tuple[int | None, str]:
    """Read until the server closes; its close code and reason."""
    from websockets.exceptions import ConnectionClosed

    try:
        while True:
            await ws.recv()
    except ConnectionClosed as e:
        return (e.rcvd.code, e.rcvd.reason) if e.rcvd else (None, "")


async def probe_pingers(url: str, n: int) -> str:
    """n clients that only ping every 0.5 s: when are they closed, and does a real client still get a slot?"""
    from websockets.asyncio.client import connect

    async def pinger():
        t = time.monotonic()
        async with connect(url) as ws:

            async def ping():
                while True:
                    await ws.send(json.dumps({"type": "ping"}))
                    await asyncio.sleep(0.5)

            task = asyncio.create_task(ping())
            code, _ = await close_code(ws)
            task.cancel()
            return code, time.monotonic() - t

    tasks = [asyncio.create_task(pinger()) for _ in range(n)]
    await asyncio.sleep(1)
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "start", "portrait": "bundled", "options": {"size": 128}}))
        started = json.loads(await ws.recv())["type"]
    results = await asyncio.gather(*tasks)
    closed = ", ".join(f"{code} after {s:.1f} s" for code, s in results)
    return f"{n} pinging clients: a real client while they pinged got {started!r}; pingers closed: {closed}"


async def probe_reason(url: str) -> str:
    from websockets.asyncio.client import connect

    async with connect(url) as ws:
        emotion = "heureuse-é" * 30  # quoted in the error, so in the close reason
        await ws.send(json.dumps({"type": "start", "portrait": "bundled", "options": {"emotion": emotion}}))
        code, reason = await close_code(ws)
    return f"non-ASCII error: close code {code} (1008 expected, 1006 was the bug), reason {len(reason)} chars"


def probe_bomb(base: str, pid: int) -> str:
    bomb = cv2.imencode(".png", np.zeros((6300, 6300, 4), np.uint16))[1].tobytes()
    before = rss_mb(pid)
    request = urllib.request.Request(f"{base}/portraits", bomb, {"Content-Type": "image/png"})
    t = time.monotonic()
    try:
        status = urllib.request.urlopen(request, timeout=120).status
    except urllib.error.HTTPError as e:
        status = e.code
    return (
        f"6300x6300 16-bit RGBA PNG ({len(bomb) / 1024:.0f} kB): HTTP {status} in "
        f"{time.monotonic() - t:.2f} s, server RSS {before:.0f} -> {rss_mb(pid):.0f} MB"
    )


def probe_stall(port: int) -> str:
    """Headers and part of the body, then nothing: how long does the server hold the connection?"""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(
            b"POST /portraits HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            b"Content-Length: 100000\r\n\r\n\x89PNG"
        )
        t = time.monotonic()
        s.settimeout(120)
        reply = s.recv(200)
    status = reply.split(b"\r\n", 1)[0].decode(errors="replace")
    return f"stalled upload body: {status!r} after {time.monotonic() - t:.1f} s"


def probe_header_stall(port: int, n: int = 300) -> str:
    """n connections that send half their headers and stall (the issue held 300 for ever): how many are
    still open after the header deadline, and how many sockets does the server hold meanwhile?"""
    held = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        s.settimeout(0.0)
        held.append(s)
    t = time.monotonic()
    time.sleep(4.0)  # the probe's server runs with --header-timeout 3
    still_open = 0
    for s in held:
        try:
            still_open += s.recv(1) != b""  # b"" means the server closed it
        except BlockingIOError:
            still_open += 1
        except OSError:
            pass
        s.close()
    waited = time.monotonic() - t
    return f"{n} connections stalled in their headers: {still_open} still open after {waited:.1f} s"


async def cycles(url: str, pid: int, n: int, size: int) -> list[str]:
    """n sessions one after another, each: start, 2 s of speech as fast as it goes, flush, close."""
    from websockets.asyncio.client import connect

    from talkface.stream.load import _speech

    speech = _speech(2.0)
    lines, first = [], None
    for i in range(1, n + 1):
        async with connect(url, max_size=2**24) as ws:
            start = {"type": "start", "portrait": "bundled", "format": "f32", "options": {"size": size}}
            await ws.send(json.dumps(start))
            assert json.loads(await ws.recv())["type"] == "ready"
            for k in range(0, len(speech), 320):
                await ws.send(speech[k : k + 320].tobytes())
            await ws.send(json.dumps({"type": "flush"}))
            while not isinstance(await ws.recv(), str):  # frames until "flushed"
                pass
        await asyncio.sleep(0.3)  # the session closes on its own thread
        if i == 1:
            first = rss_mb(pid)
        if i % 5 == 0:
            lines.append(
                f"after {i} sessions: RSS {rss_mb(pid):.0f} MB ({rss_mb(pid) - first:+.0f} since the 1st)"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    base, url = f"http://127.0.0.1:{args.port}", f"ws://127.0.0.1:{args.port}/ws"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "talkface.cli",
            "serve",
            "--port",
            str(args.port),
            "--max-sessions",
            "2",
            "--start-deadline",
            "3",
            "--upload-timeout",
            "5",
            "--header-timeout",
            "3",
        ],  # fmt: skip
        env=env,
    )
    try:
        for _ in range(600):
            try:
                health(base)
                break
            except OSError:
                time.sleep(0.2)
        print(f"server up: RSS {rss_mb(server.pid):.0f} MB", flush=True)
        print(asyncio.run(probe_pingers(url, 3)), flush=True)
        print(asyncio.run(probe_reason(url)), flush=True)
        print(probe_bomb(base, server.pid), flush=True)
        print(probe_stall(args.port), flush=True)
        print(probe_header_stall(args.port), flush=True)
        for line in asyncio.run(cycles(url, server.pid, args.cycles, args.size)):
            print(line, flush=True)
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
