"""The engine every job runs on: portrait -> rig, audio -> motion, motion -> frames -> watermark -> sink.

animate, say and drive (talkface.pipeline), the live Session (stream.session) and the benchmark
(eval.bench) all go through one Engine, so the benchmark times what users run and a live session makes the
frames that `animate` would. The engine sees the motion stage only through its contract (motion.contract)
and the registry of generators (motion.generators).

    engine = Engine(portrait, options)                          # face: the rig, once per portrait
    windows = engine.motion_windows(chunks, options)            # audio -> motion, window by window
    engine.write(windows, output, options.fps, audio_path)      # frames -> watermark -> MP4

Memory stays bounded whatever the audio's length: audio and motion go through in windows of WINDOW_S and
frames are encoded as they are made. The one exception is phone recognition (a generator that needs
phonemes, given no text): the recogniser reads the whole signal first.

A StageClock given to the engine records the seconds each stage takes, per call (eval.bench reads it).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from talkface import __version__
from talkface.audio.load import SAMPLE_RATE, Audio, AudioReader
from talkface.audio.music import voice_activity
from talkface.config import AnimateOptions, RenderOptions
from talkface.face.action_units import AU, FACS
from talkface.face.cache import portrait_rig
from talkface.face.image import load_image
from talkface.face.learned_basis import JAW_GAP
from talkface.face.rig import FaceRig, build_rig
from talkface.motion.contract import MotionSequence, Phoneme
from talkface.motion.generators import generator
from talkface.motion.stream import AudioMotion
from talkface.outputs import check_output
from talkface.render.paste import PasteBack
from talkface.render.renderer import Renderer
from talkface.threads import single_thread_blas
from talkface.video.encode import Mp4Writer
from talkface.video.label import draw_label
from talkface.video.provenance import ingredient
from talkface.video.watermark import Payload, Watermarker, new_payload

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]  # (frames done, frames in all when known)

WINDOW_S = 2.0  # seconds of audio per sliding window offline (live: whatever chunk arrives)


class StageClock:
    """Seconds per call of each stage of a job, in the order the stages first ran. `clock("render")` is a
    context manager that times one call."""

    def __init__(self):
        self.calls: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.calls.setdefault(stage, []).append(time.perf_counter() - t)

    def total(self, stage: str) -> float:
        """Seconds spent in `stage` over the job (0 if it never ran)."""
        return float(sum(self.calls.get(stage, ())))


def _untimed(stage: str) -> contextlib.nullcontext:
    return contextlib.nullcontext()


class Engine:
    """One portrait made ready to animate: its rig at options.size / options.head_distance, and the frame
    stage (render on the rig, paste into the whole portrait with options.full_frame, label with
    options.label, watermark with one payload per engine: one video, or one live session).

    portrait: an image path or an RGB uint8 array. clock: a StageClock to time the stages (eval.bench).
    rig: the portrait's rig already built at options.size and options.head_distance (build_rig; a batch
    analyses each portrait once), instead of analysing it again. cached: keep the portrait's analysis in
    the user's cache, and take it from there when the portrait was analysed before (face.cache: the same
    rig, without mediapipe); the offline jobs do (talkface.pipeline), a live session (anyone's upload) does
    not. Raises TalkfaceError (NoFaceError) for an unreadable image or one without a face."""

    def __init__(
        self,
        portrait: str | Path | np.ndarray,
        options: RenderOptions,
        clock: StageClock | None = None,
        payload: Payload | None = None,
        rig: FaceRig | None = None,
        cached: bool = False,
    ):
        single_thread_blas()
        self.options = options
        self._clock = clock or _untimed
        self._portrait = portrait  # named, by its hash, in each MP4's C2PA manifest
        with self._clock("face"):
            self.image = portrait if isinstance(portrait, np.ndarray) else load_image(portrait)
            analyse = portrait_rig if cached else build_rig
            self.rig: FaceRig = rig or analyse(self.image, options.size, head_distance=options.head_distance)
        self.payload = payload or new_payload()
        with self._clock("frame_setup"):
            self.renderer = Renderer(self.rig, options.neutralize)
            self._paste = PasteBack(self.rig, self.image) if options.full_frame else None
            self.frame_size = self._paste.frame_size if self._paste else (options.size, options.size)
            self._marker = Watermarker(self.payload, *self.frame_size)
        warp = self.renderer.warp
        rest = [f"{n} (AU{FACS[AU[n]]}) {v:.2f}" for n, v in warp.rest_expression.items() if v > 0]
        if warp.rest_jaw:  # lips apart in the portrait: speech starts from them closed
            rest.append(f"lips parted (AU25) by {-warp.rest_jaw * JAW_GAP:.2f} eye distances")
        log.info(
            "the portrait's own expression: %s%s",
            ", ".join(rest) or "neutral",
            " (taken away: --neutralize)" if rest and options.neutralize else "",
        )

    # -- audio -> motion ------------------------------------------------------------------------------

    def audio_motion(
        self,
        options: AnimateOptions,
        phonemes: tuple[Phoneme, ...] = (),
        live: bool = False,
        voice: np.ndarray | None = None,
    ) -> AudioMotion:
        """16 kHz samples in, motion out, push by push: options.generator's stream at options.fps with the
        options' controls (live sessions push what arrives; offline, motion_windows pushes windows).
        live: no phonemes can be known in advance; a generator that reads them (needs_phonemes) listens to
        phones recognised as the audio arrives (audio.phones.LivePhones). voice: the whole signal's voice
        activity, when it is known in advance (AudioMotion)."""
        make = generator(options.generator)
        stream = make(options.fps, options.controls(), tuple(phonemes), options.motion_model)
        listen = live and not phonemes and make.needs_phonemes
        return AudioMotion(stream, clock=self._clock, live_phones=listen, voice=voice)

    def phonemes_for(
        self, options: AnimateOptions, audio: AudioReader | Audio, transcript: str | None = None
    ) -> tuple[tuple[Phoneme, ...], Audio | None]:
        """phonemes_for(options, audio, transcript), timed by this engine's clock."""
        return phonemes_for(options, audio, transcript, self._clock)

    def motion_windows(
        self,
        audio: AudioReader | Audio,
        options: AnimateOptions,
        phonemes: tuple[Phoneme, ...] | None = None,
        transcript: str | None = None,
    ) -> Iterator[MotionSequence]:
        """Motion for `audio` (a file being read, or samples in memory), pushed in windows of WINDOW_S: the
        same motion as for any other window size. phonemes: known timings (say); else phonemes_for finds
        them when the generator or a transcript needs them. Audio in memory (the learned generator's, say's,
        a transcript's) has its voice activity found first, over the whole of it, so that a voice sung over
        music is heard (audio.music); a file streamed (the rules without a transcript) has silero-vad's."""
        if phonemes is None:
            phonemes, whole = self.phonemes_for(options, audio, transcript)
            if whole is not None:
                audio = whole
        voice = None
        if isinstance(audio, Audio):
            with self._clock("audio"):
                voice = voice_activity(audio.samples)
        chunks = _in_windows(audio.samples) if isinstance(audio, Audio) else iter(audio)
        source = self.audio_motion(options, phonemes, voice=voice)
        if isinstance(audio, Audio):
            source.hear(audio, voice)
        window = int(WINDOW_S * SAMPLE_RATE)
        pending: list[np.ndarray] = []
        count = 0
        for chunk in chunks:
            pending.append(chunk)
            count += len(chunk)
            if count >= window:
                yield source.push(np.concatenate(pending))
                pending, count = [], 0
        if pending:
            yield source.push(np.concatenate(pending))
        yield source.finish()

    # -- motion -> frames -> sink ---------------------------------------------------------------------

    def frame(self, motion: MotionSequence, i: int) -> np.ndarray:
        """Frame i of `motion`, finished: RGB uint8 (H, W, 3) at frame_size, watermarked; a new array."""
        clock = self._clock
        with clock("render"):
            frame = self.renderer.render(motion, i)  # a new array each call: marking it in place is safe
        if self._paste:
            with clock("paste"):
                frame = self._paste.paste(frame)
        if self.options.label:
            frame = draw_label(frame)
        with clock("watermark"):
            return self._marker.embed(frame, out=frame)

    def write(
        self,
        motion: MotionSequence | Iterable[MotionSequence],
        output: str | Path,
        fps: float,
        audio_path: Path | None,
        progress: Progress | None = None,
        total: int | None = None,
    ) -> Path:
        """Render every row of `motion` (one sequence, or consecutive windows of one) and write the MP4 at
        `fps` atomically, with the first audio stream of `audio_path` if given. total: frames expected (for
        progress; known for one sequence)."""
        output = check_output(output)
        windows = [motion] if isinstance(motion, MotionSequence) else motion
        if isinstance(motion, MotionSequence):
            total = len(motion)
        log.info("rendering at %g fps (video id %08x)", fps, self.payload.video_id)
        done = 0
        crf = self.options.crf
        inputs = [ingredient(self._portrait)] + ([ingredient(audio_path)] if audio_path else [])
        meta = _metadata(self.payload)
        with (
            Mp4Writer(
                output, self.frame_size, fps, audio_path, crf=crf, metadata=meta, ingredients=inputs
            ) as w,
            _EncoderThread(w, self._clock) as encoder,
        ):
            for window in windows:
                for i in range(len(window)):
                    encoder.put(self.frame(window, i))
                    done += 1
                    if progress:
                        progress(done, total)
        return output


class _EncoderThread:
    """Frames handed to an Mp4Writer on a second thread, in order: x264 and the colour conversion release the
    GIL, so encoding frame i overlaps rendering frame i + 1 (the render stage holds it for its numpy parts).
    The queue is short (QUEUE frames), so memory stays bounded; an encoder error is raised on the next put()
    or at the end, and the writer is only closed (by its own `with`) after the thread has stopped."""

    QUEUE = 4

    def __init__(self, writer: Mp4Writer, clock):
        self._writer, self._clock = writer, clock
        self._queue: queue.Queue = queue.Queue(self.QUEUE)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="talkface-encode", daemon=True)

    def __enter__(self) -> _EncoderThread:
        self._thread.start()
        return self

    def put(self, frame: np.ndarray) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(frame)  # never blocks for ever: after an error the thread still drains the queue

    def _run(self) -> None:
        while (frame := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: the producer will see the error
            try:
                with self._clock("encode"):
                    self._writer.write(frame)
            except BaseException as e:  # raised on the producer's thread
                self._error = e

    def __exit__(self, *exc) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and exc[0] is None:
            raise self._error


def phonemes_for(
    options: AnimateOptions,
    audio: AudioReader | Audio,
    transcript: str | None = None,
    clock: StageClock | None = None,
) -> tuple[tuple[Phoneme, ...], Audio | None]:
    """Phonemes for the generator, and the whole audio if they needed it: the transcript's words
    force-aligned to the audio (English), or, for a generator that needs phonemes, phones recognised in
    the audio; none for any other generator (its audio then streams, and None is returned for it). It
    needs no portrait: a job may run it while the portrait is analysed (pipeline.animate)."""
    if not transcript and not generator(options.generator).needs_phonemes:
        return (), None
    sound = audio.read() if isinstance(audio, AudioReader) else audio  # both read whole stretches
    with (clock or _untimed)("phones"):
        if transcript:
            from talkface.audio.align import align_transcript

            return align_transcript(sound, transcript), sound
        from talkface.audio.phones import recognize_phones

        return recognize_phones(sound), sound


def _in_windows(samples: np.ndarray) -> Iterator[np.ndarray]:
    window = int(WINDOW_S * SAMPLE_RATE)
    for i in range(0, len(samples), window):
        yield samples[i : i + window]


def _metadata(payload: Payload) -> dict[str, str]:
    """MP4 tags that say the video is synthetic and who made it (the watermark says it in the pixels)."""
    return {
        "comment": f"synthetic video generated by talkface {__version__}",
        "description": (
            "AI-generated (IPTC digital source type trainedAlgorithmicMedia): synthetic talking-face video "
            f"made by talkface {__version__} from one image; video id {payload.video_id:08x}; "
            "check with `talkface verify`"
        ),
        "creation_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
    }
