"""The motion live: ARKit blendshape frames (JSON) for WebSocket clients that render their own character.

A client asks for them in its start message (stream.server): `"motion": "arkit"` adds, for every frame, a
text message beside the JPEG frame, and `"video": false` leaves the JPEG frames out (the face is still made
and watermarked on the server, but nothing of it is sent; a small `size` keeps that cheap):

    {"type": "motion", "generation": g, "index": i, "timestamp": t,
     "weights": [52 numbers 0..1, in the order of "blendshapes" in the ready message],
     "head": [yaw, pitch, roll], "eyes": [yaw, pitch]}          (degrees; signs as export.arkit.ArkitTrack)

The ready message then carries "blendshapes": the 52 ARKit names. The weights are export.arkit's, from the
very motion row the frame shows (after any barge-in hush or listening behaviour the session applies).
Visemes are not offered live: they come from phonemes, which a live stream does not have.
"""

from __future__ import annotations

import threading
from functools import cache

import numpy as np

from talkface.export.arkit import ARKIT_NAMES, arkit_track, fit
from talkface.motion.contract import MotionSequence

LIVE_MOTION = ("arkit",)  # what a start message's "motion" may ask for


def parse_request(message: dict) -> tuple[str | None, bool]:
    """(motion format or None, whether JPEG frames are sent) from a start message; raises ValueError with the
    client's error text."""
    motion = message.get("motion")
    if motion is not None and (not isinstance(motion, str) or motion not in LIVE_MOTION):
        raise ValueError(f"motion must be one of {', '.join(LIVE_MOTION)}, or absent")
    video = message.get("video", True)
    if not isinstance(video, bool):
        raise ValueError("video must be true or false")
    if not video and motion is None:
        raise ValueError('"video": false needs "motion": "arkit" (else nothing would be sent)')
    return motion, video


class LiveMotion:
    """Captures the motion row of each frame a Session renders (through its `adjust` hook, chained after any
    adjustment already there) and turns it into the frame's motion message."""

    def __init__(self, session):
        fit()  # the mapping, fitted once per process (about a second), before the first frame
        self._rows: dict[int, MotionSequence] = {}
        self._lock = threading.Lock()
        before = session.adjust

        def capture(index: int, motion: MotionSequence) -> MotionSequence:
            if before is not None:
                motion = before(index, motion)
            with self._lock:
                self._rows[index] = motion
            return motion

        session.adjust = capture

    @staticmethod
    def names() -> list[str]:
        return list(ARKIT_NAMES)

    def message(self, generation: int, index: int, timestamp: float) -> dict | None:
        """The motion message of frame `index` (just rendered), or None if its row was not captured."""
        with self._lock:
            row = self._rows.pop(index, None)
            self._rows = {i: r for i, r in self._rows.items() if i > index}  # older rows: skipped frames
        if row is None:
            return None
        track = arkit_track(row)
        return {
            "type": "motion",
            "generation": generation,
            "index": index,
            "timestamp": timestamp,
            "weights": [round(float(v), 4) for v in track.weights[0]],
            "head": [round(float(v), 3) for v in track.head[0]],
            "eyes": [round(float(v), 3) for v in track.eyes[0]],
        }


@cache
def still_head(textured: bool) -> bytes:
    """The glTF head (export.gltf) at rest, one keyframe: the canonical face, or the bundled portrait's face
    and texture, for the 3D avatar page (stream/static/avatar3d.html) to drive live."""
    import cv2

    from talkface.assets import asset_path
    from talkface.export.gltf import JPEG_QUALITY, head_glb
    from talkface.face.image import load_image
    from talkface.face.rig import build_rig

    track = arkit_track(MotionSequence.still(1, 25.0))
    if not textured:
        return head_glb(track, np.zeros((1, 2)), 0.0)
    rig = build_rig(load_image(asset_path("portrait.jpg")), 512)
    ok, jpeg = cv2.imencode(".jpg", rig.image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return head_glb(track, np.zeros((1, 2)), 0.0, rig.points, jpeg.tobytes(), rig.size)


async def head_route(request):
    """GET /avatar/head.glb[?portrait=bundled]: the head at rest as binary glTF (made once per process)."""
    import anyio
    from starlette.responses import Response

    textured = request.query_params.get("portrait") == "bundled"
    data = await anyio.to_thread.run_sync(still_head, textured)
    return Response(data, media_type="model/gltf-binary", headers={"Cache-Control": "max-age=3600"})
