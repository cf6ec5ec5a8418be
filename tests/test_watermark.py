"""Watermark, label and `verify`: the mark is invisible, survives re-encoding, resizing and cropping,
and is never found where it was not put."""

import argparse
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from talkface.errors import TalkfaceError
from talkface.video import watermark as wm
from talkface.video.label import draw_label
from talkface.video.verify_cli import cmd_verify

SIZE = 384  # frames of the test clip: big enough for crf 28 to leave the mark readable (see caveats)
FRAMES = 38  # 1.5 s at 25 fps
PAYLOAD = wm.Payload("talkface", "0.1.0", 0xC0FFEE42)


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / mse)


def _encode(frames, path, crf):
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.options = {"crf": str(crf), "preset": "veryfast"}
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 25)
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path


def _decode(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def still(portrait):
    im = cv2.cvtColor(cv2.imread(str(portrait)), cv2.COLOR_BGR2RGB)
    return cv2.resize(im, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def clip(still):
    """A talking-head-like clip: the head region sways (rotation and shift), the background holds."""
    frames = []
    for t in range(FRAMES):
        m = cv2.getRotationMatrix2D((SIZE / 2, SIZE * 0.4), 2 * np.sin(t / 4), 1.0)
        m[:, 2] += [2 * np.sin(t / 7), 1.5 * np.cos(t / 5)]
        moved = cv2.warpAffine(still, m, (SIZE, SIZE), borderMode=cv2.BORDER_REFLECT)
        f = still.copy()
        f[int(SIZE * 0.1) : int(SIZE * 0.6), int(SIZE * 0.3) : int(SIZE * 0.7)] = moved[
            int(SIZE * 0.1) : int(SIZE * 0.6), int(SIZE * 0.3) : int(SIZE * 0.7)
        ]
        frames.append(f)
    return frames


@pytest.fixture(scope="module")
def marked_mp4(clip, tmp_path_factory):
    """The clip with the mark, as the writer makes it (H.264 crf 18)."""
    w = wm.Watermarker(PAYLOAD, SIZE, SIZE)
    return _encode([w.embed(f) for f in clip], tmp_path_factory.mktemp("wm") / "marked.mp4", crf=18)


def test_payload_bits_round_trip():
    bits = PAYLOAD.to_bits()
    assert bits.shape == (64,) and set(np.unique(bits)) <= {0, 1}
    assert wm.Payload.from_bits(bits) == PAYLOAD
    p = wm.new_payload()
    assert p.tool == "talkface" and wm.Payload.from_bits(p.to_bits()) == p
    # a seed fixes the id (the evaluation's renders repeat), within the id's bits
    assert wm.new_payload(7) == wm.new_payload(7) and wm.new_payload(2**40 + 7).video_id == 7
    broken = bits.copy()
    broken[40] ^= 1
    assert wm.Payload.from_bits(broken) is None  # the CRC catches it
    with pytest.raises(ValueError):
        wm.Payload("talkface", "0.99.0", 1).to_bits()  # minor has 6 bits


def test_viterbi_corrects_noisy_soft_bits():
    coded = 2.0 * wm._conv_encode(PAYLOAD.to_bits()) - 1
    noisy = coded + np.random.default_rng(0).normal(0, 0.6, coded.shape)
    assert wm.Payload.from_bits(wm._viterbi(noisy, wm._int_bits(0x01, 8))) == PAYLOAD


def test_embed_is_invisible_by_psnr_and_can_work_in_place(still):
    w = wm.Watermarker(PAYLOAD, SIZE, SIZE)
    marked = w.embed(still)
    assert marked.shape == still.shape and marked.dtype == np.uint8
    assert _psnr(marked, still) >= 40
    assert not np.array_equal(marked, still)
    frame = still.copy()
    assert w.embed(frame, out=frame) is frame and np.array_equal(frame, marked)
    with pytest.raises(ValueError):
        wm.Watermarker(PAYLOAD, 100, 100)


def test_found_in_the_written_video(marked_mp4):
    d = wm.detect_video(marked_mp4)
    assert d.found and d.payload == PAYLOAD
    assert d.confidence > 0.999999 and d.false_positive_probability < 1e-6 and d.frames_read == FRAMES // 2


def test_survives_h264_crf28_reencode(marked_mp4, tmp_path):
    again = _encode(_decode(marked_mp4), tmp_path / "crf28.mp4", crf=28)
    d = wm.detect_video(again)
    assert d.found and d.payload == PAYLOAD


def test_survives_downscale_to_half(marked_mp4):
    frames = _decode(marked_mp4)
    small = [cv2.resize(f, (SIZE // 2, SIZE // 2), interpolation=cv2.INTER_AREA) for f in frames]
    d = wm.detect_frames(small)
    assert d.found and d.payload == PAYLOAD and abs(d.scale - 1) < 0.02


@pytest.mark.parametrize("crop", ["5% each side", "10% off the left"])
def test_survives_a_10_percent_crop(marked_mp4, crop):
    frames = _decode(marked_mp4)
    e = SIZE // 20
    cut = [f[e:-e, e:-e] if crop == "5% each side" else f[:, 2 * e :] for f in frames]
    d = wm.detect_frames(cut)
    assert d.found and d.payload == PAYLOAD and abs(d.scale - SIZE / (SIZE - 2 * e)) < 0.02


def test_not_found_without_a_mark(clip, tmp_path):
    plain = _encode(clip, tmp_path / "plain.mp4", crf=18)
    d = wm.detect_video(plain)
    assert not d.found and d.payload is None and d.sync_z < wm.Z_MIN and d.confidence == 0.0


def test_not_found_in_noise():
    rng = np.random.default_rng(1)
    d = wm.detect_frames(rng.integers(0, 256, (10, 256, 256, 3), dtype=np.uint8))
    assert not d.found and d.sync_z < wm.Z_MIN
    assert not wm.detect_frames([]).found


def test_unreadable_input_raises(tmp_path, speech_wav):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    for path in (junk, tmp_path / "missing.mp4", speech_wav):  # garbage, no file, audio only
        with pytest.raises(TalkfaceError):
            wm.detect_video(path)


def test_label_marks_only_the_bottom_right_corner(still):
    labelled = draw_label(still)
    assert labelled.shape == still.shape and labelled is not still
    changed = np.argwhere(np.any(labelled != still, axis=2))
    assert len(changed) > 0
    assert changed[:, 0].min() > SIZE * 0.85 and changed[:, 1].min() > SIZE * 0.6
    assert np.array_equal(draw_label(np.zeros((40, 40, 3), np.uint8)), np.zeros((40, 40, 3)))


def test_verify_command(marked_mp4, tmp_path, clip, capsys):
    assert cmd_verify(argparse.Namespace(video=str(marked_mp4), frames=40, json=False)) == 0
    out = capsys.readouterr().out
    assert "talkface 0.1.0" in out and "c0ffee42" in out and "confidence" in out
    plain = _encode(clip[:12], tmp_path / "plain.mp4", crf=18)
    assert cmd_verify(argparse.Namespace(video=str(plain), frames=40, json=False)) == 1
    assert "no talkface watermark found (confidence" in capsys.readouterr().out


def test_animate_marks_the_payload_it_is_given(portrait, speech_wav, tmp_path):
    """animate(payload=...) marks that id (the evaluation fixes one per clip) and renders the same pixels
    again; without one, each video gets a fresh random id."""
    from talkface.config import AnimateOptions
    from talkface.pipeline import animate

    options = AnimateOptions(size=128, seed=4)
    a, b = (animate(portrait, speech_wav, tmp_path / f"{k}.mp4", options, payload=PAYLOAD) for k in "ab")
    assert np.array_equal(np.array(_decode(a)), np.array(_decode(b)))
    assert wm.detect_video(a).payload == PAYLOAD
    fresh = wm.detect_video(animate(portrait, speech_wav, tmp_path / "c.mp4", options)).payload
    assert fresh is not None and fresh.video_id != PAYLOAD.video_id
