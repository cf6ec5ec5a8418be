"""Awkward and broken inputs end to end (issue 17): each gives a correct video (exit 0) or one line on
stderr and exit code 2, never a traceback or an internal error, and no output file after a failure.
Every input is generated here, small (the 61-megapixel photo is a flat JPEG: small on disk)."""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import synth_speech, write_audio
from PIL import Image

import talkface.cli
from talkface.assets import asset_path
from talkface.audio.features import n_video_frames
from talkface.audio.load import from_samples, load_audio, write_wav
from talkface.audio.tts import MAX_TEXT_CHARS
from talkface.cli import main
from talkface.face.image import load_image


def write_pcm(path: Path, data: np.ndarray, rate: int, codec: str, layout: str | None = None) -> Path:
    """data: shape (channels, N) float, written as-is (no clipping) with a PCM `codec` (pcm_f32le...)."""
    layout = layout or {1: "mono", 2: "stereo", 6: "5.1"}[data.shape[0]]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = layout
        fmt = stream.codec_context.codec.audio_formats[0].name
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(data, np.float32), format="fltp", layout=layout
        )
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        to_codec = av.AudioResampler(format=fmt, layout=layout, rate=rate)
        for f in to_codec.resample(frame) + to_codec.resample(None):
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def write_video(path: Path, seconds: float, with_audio: bool) -> Path:
    """A small H.264 clip (grey frames), with 16 kHz AAC speech when with_audio."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        if with_audio:
            audio = out.add_stream("aac", rate=16000)
            audio.layout = "mono"
            x = synth_speech(seconds)[None]
            frame = av.AudioFrame.from_ndarray(x, format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 16000, 0, Fraction(1, 16000)
            for packet in audio.encode(frame):
                out.mux(packet)
            for packet in audio.encode(None):
                out.mux(packet)
        for i in range(int(seconds * 25)):
            f = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 128, np.uint8), format="rgb24")
            f.pts = i
            for packet in video.encode(f):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A ~60-byte PNG that declares width x height RGB pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) is patched to declare width x height."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "grey").save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.fixture(scope="module")
def face() -> Image.Image:
    return Image.open(asset_path("portrait.jpg")).convert("RGB")


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    return write_audio(tmp_path_factory.mktemp("speech") / "speech.wav", synth_speech(1.0), 16000)


def animate(tmp_path, image, audio, *extra) -> tuple[int, Path]:
    out = tmp_path / "out" / "video.mp4"
    code = main(["animate", str(image), str(audio), "-o", str(out), "--size", "128", "-q", *extra])
    return code, out


def assert_video(out: Path, seconds: float, channels: int | None = None) -> None:
    """A complete H.264 + AAC MP4 lasting `seconds` (to a frame), whose sound is finite."""
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.audio[0].codec_context.name == "aac"
        if channels:
            assert c.streams.audio[0].channels == channels
        frames = sum(1 for _ in c.decode(video=0))
    with av.open(str(out)) as c:
        sound = np.concatenate([f.to_ndarray().ravel() for f in c.decode(audio=0)])
    assert frames == n_video_frames(seconds, 25) >= 1
    assert np.isfinite(sound).all()
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary left beside it


def assert_refused(code: int, out: Path, capsys, expect: str) -> None:
    """Exit 2, exactly one stderr line naming the problem, no traceback, and no output (or partial) file."""
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("talkface: error: ") and expect in lines[0], err
    assert "Traceback" not in err and "internal error" not in err
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())


# -- audio --------------------------------------------------------------------------------------------


def test_a_few_nan_or_inf_samples_are_silenced_with_a_warning(tmp_path, portrait, caplog):
    x = synth_speech(1.0)
    x[[100, 5000, 9000, 12000]] = [np.nan, np.inf, -np.inf, 1e30]
    wav = write_pcm(tmp_path / "nan.wav", x[None], 16000, "pcm_f32le")
    assert np.isfinite(load_audio(wav).samples).all()  # what the models see
    code, out = animate(tmp_path, portrait, wav)
    assert code == 0
    assert_video(out, 1.0)  # the encoder got the repaired copy: the file's own audio would fail it
    assert "4 of its samples are not numbers" in caplog.text
    assert not list(tmp_path.glob("**/repaired.wav"))


def test_bad_samples_in_memory_are_silenced_too(tmp_path):
    x = np.array([0.1, np.nan, np.inf, -1e30] * 1000, np.float32)
    assert np.isfinite(from_samples(x, 8000).samples).all()
    assert np.isfinite(load_audio(write_wav(tmp_path / "w.wav", x, 8000)).samples).all()


def test_nan_in_one_channel_of_six(tmp_path, portrait):
    x = np.tile(synth_speech(1.0), (6, 1))
    x[3, 2000:2100] = np.nan
    code, out = animate(tmp_path, portrait, write_pcm(tmp_path / "nan6.wav", x, 16000, "pcm_f32le"))
    assert code == 0
    assert_video(out, 1.0, channels=2)


@pytest.mark.parametrize("bad", [np.nan, 1e20])
def test_audio_that_is_mostly_not_numbers_is_refused(tmp_path, portrait, capsys, bad):
    x = synth_speech(1.0)
    x[: int(0.8 * len(x))] = bad
    code, out = animate(tmp_path, portrait, write_pcm(tmp_path / "bad.wav", x[None], 16000, "pcm_f32le"))
    assert_refused(code, out, capsys, "80% of its samples are not numbers")


def test_dc_offset_is_removed(tmp_path, portrait):
    x = np.concatenate([np.zeros(8000, np.float32), synth_speech(1.0)])
    wav = write_audio(tmp_path / "dc.wav", 0.5 * x + 0.4, 16000)
    samples = load_audio(wav).samples
    assert abs(samples.mean()) < 0.002  # a 0.4 offset, gone from the start
    assert np.abs(samples[:8000]).max() < 0.002  # the leading silence is silent
    code, out = animate(tmp_path, portrait, wav)
    assert code == 0
    assert_video(out, 1.5)


@pytest.mark.parametrize(
    "case,rate,codec,channels,seconds",
    [
        ("one_sample", 16000, "pcm_s16le", 1, 1 / 16000),
        ("96k_24bit", 96000, "pcm_s24le", 1, 1.0),
        ("float", 44100, "pcm_f32le", 2, 1.0),
        ("double", 22050, "pcm_f64le", 1, 1.0),
        ("six_channels", 48000, "pcm_s16le", 6, 1.0),
    ],
)
def test_awkward_but_valid_audio_gives_a_video(tmp_path, portrait, case, rate, codec, channels, seconds):
    x = synth_speech(1.0, rate)[: max(1, round(seconds * rate))]
    wav = write_pcm(tmp_path / f"{case}.wav", np.tile(x, (channels, 1)), rate, codec)
    code, out = animate(tmp_path, portrait, wav)
    assert code == 0
    assert_video(out, seconds, channels=min(channels, 2))


def test_the_audio_of_a_video_file(tmp_path, portrait):
    code, out = animate(tmp_path, portrait, write_video(tmp_path / "clip.mp4", 1.0, with_audio=True))
    assert code == 0
    assert_video(out, load_audio(tmp_path / "clip.mp4").duration)  # AAC's priming: a little over 1 s


def test_a_truncated_wav_keeps_what_decodes(tmp_path, portrait):
    wav = write_audio(tmp_path / "whole.wav", synth_speech(2.0), 16000)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(wav.read_bytes()[: 44 + 16000 * 2])  # the header says 2 s, 1 s is there
    code, out = animate(tmp_path, portrait, cut)
    assert code == 0
    assert_video(out, 1.0)


@pytest.mark.parametrize(
    "case,expect",
    [
        ("no_audio_stream", "has no audio stream"),
        ("corrupt", "cannot read audio"),
        ("over_the_limit", "longer than the 30-minute limit"),
    ],
)
def test_audio_refused_in_one_line(tmp_path, portrait, capsys, case, expect):
    if case == "no_audio_stream":
        audio = write_video(tmp_path / "silent.mp4", 0.4, with_audio=False)
    elif case == "corrupt":
        audio = tmp_path / "corrupt.wav"
        audio.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, np.uint8).tobytes())
    else:  # 31 minutes, real samples: at 1 kHz a 3.7 MB file
        audio = write_audio(tmp_path / "long.wav", np.zeros(31 * 60 * 1000, np.float32), 1000)
    code, out = animate(tmp_path, portrait, audio)
    assert_refused(code, out, capsys, expect)


# -- images -------------------------------------------------------------------------------------------


def on_canvas(face: Image.Image, size: tuple[int, int], scale: int) -> Image.Image:
    """The portrait `scale` times larger in the middle of a flat canvas of `size`: a big photo, cheaply."""
    canvas = Image.new("RGB", size, (180, 170, 160))
    big = face.resize((face.width * scale, face.height * scale), Image.Resampling.BILINEAR)
    canvas.paste(big, ((size[0] - big.width) // 2, (size[1] - big.height) // 2))
    return canvas


def test_a_61_megapixel_photo_is_decoded_downscaled(tmp_path, face, speech):
    path = tmp_path / "camera.jpg"
    on_canvas(face, (7000, 8750), 6).save(path, quality=80)
    t = time.perf_counter()
    image = load_image(path)
    assert image.shape == (4096, 3277, 3) and time.perf_counter() - t < 3.0
    code, out = animate(tmp_path, path, speech, "--generator", "rules")
    assert code == 0
    assert_video(out, 1.0)


def test_an_8k_square(tmp_path, face, speech):
    # As PNG (decoded whole, then downscaled) it takes ~9 s here: scripts/bad_input_slow.py runs it.
    path = tmp_path / "8k.jpg"
    on_canvas(face, (8192, 8192), 6).save(path, quality=80)
    assert load_image(path).shape == (4096, 4096, 3)
    code, out = animate(tmp_path, path, speech, "--generator", "rules")
    assert code == 0
    assert_video(out, 1.0)


def _saved(face: Image.Image, tmp_path: Path, case: str) -> Path:
    """The portrait in one of the forms cameras, editors and the web produce."""
    rgb = np.asarray(face)
    if case == "cmyk_jpeg":
        path = tmp_path / "cmyk.jpg"
        face.convert("CMYK").save(path, quality=92)
    elif case == "png_16bit_rgb":
        import cv2

        path = tmp_path / "deep.png"
        cv2.imwrite(str(path), (rgb[:, :, ::-1].astype(np.uint16) * 257))
    elif case == "png_16bit_grey":
        path = tmp_path / "grey16.png"
        Image.fromarray(np.asarray(face.convert("L")).astype(np.uint16) * 257).save(path)
    elif case == "palette_transparency":
        path = tmp_path / "palette.png"
        p = face.quantize(255)
        p.info["transparency"] = 0
        p.save(path, transparency=0)
    elif case == "grey_alpha":
        path = tmp_path / "la.png"
        face.convert("LA").save(path)
    elif case == "exif_rotated":
        path = tmp_path / "rotated.jpg"
        exif = Image.Exif()
        exif[0x0112] = 6  # stored turned a quarter to the left: shown after a quarter turn right
        face.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=92)
    elif case == "progressive_jpeg":
        path = tmp_path / "progressive.jpg"
        face.save(path, progressive=True, quality=90)
    elif case in ("animated_gif", "animated_webp"):
        path = tmp_path / ("anim.gif" if case == "animated_gif" else "anim.webp")
        black = Image.new("RGB", face.size)
        face.save(path, save_all=True, append_images=[black, black], duration=100, loop=0)
    elif case == "png_named_jpg":
        path = tmp_path / "lying.jpg"
        face.save(path, "PNG")
    elif case == "webp":
        path = tmp_path / "portrait.webp"
        face.save(path, quality=90)
    elif case in ("bmp", "tiff"):
        path = tmp_path / f"portrait.{case}"
        face.save(path)
    return path


IMAGE_CASES = [
    "cmyk_jpeg",
    "png_16bit_rgb",
    "png_16bit_grey",
    "palette_transparency",
    "grey_alpha",
    "exif_rotated",
    "progressive_jpeg",
    "animated_gif",
    "animated_webp",
    "png_named_jpg",
    "webp",
    "bmp",
    "tiff",
]


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_every_kind_of_image_gives_a_video(tmp_path, face, speech, case):
    path = _saved(face, tmp_path, case)
    image = load_image(path)
    assert image.dtype == np.uint8 and image.shape == (face.height, face.width, 3)
    # Upright, first frame, the right colours: close to the portrait (palettes and grey lose some).
    reference = np.asarray(face.convert("L").convert("RGB") if "grey" in case else face, np.float32)
    assert np.abs(image.astype(np.float32) - reference).mean() < 12, case
    code, out = animate(tmp_path, path, speech, "--generator", "rules")
    assert code == 0
    assert_video(out, 1.0)


@pytest.mark.parametrize(
    "case,expect",
    [
        ("png_bomb", "too large (it declares 900 megapixels)"),
        ("jpeg_bomb", "too large (it declares 900 megapixels)"),
        ("png_over_the_pixel_limit", "too large (13000x13000); the limit is 160 megapixels"),
        ("png_too_big_to_decode", "needs 549 MB to decode"),
        ("truncated_jpeg", "truncated or damaged"),
        ("truncated_png", "truncated or damaged"),
        ("not_an_image", "cannot read"),
        ("tiny", "too small"),
    ],
)
def test_images_refused_fast_in_one_line(tmp_path, face, speech, capsys, case, expect):
    path = tmp_path / "in.img"
    if case == "png_bomb":
        path.write_bytes(png_header_only(30000, 30000))
    elif case == "jpeg_bomb":
        path.write_bytes(jpeg_declaring(30000, 30000))
    elif case == "png_over_the_pixel_limit":  # under Pillow's own bomb limit, over ours
        path.write_bytes(png_header_only(13000, 13000))
    elif case == "png_too_big_to_decode":  # under the pixel limit, but 12000 x 12000 x 4 bytes to decode
        path.write_bytes(png_header_only(12000, 12000))
    elif case.startswith("truncated"):
        whole = _saved(face, tmp_path, "progressive_jpeg" if case.endswith("jpeg") else "png_named_jpg")
        path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    elif case == "not_an_image":
        path.write_text("not an image\n" * 100)
    elif case == "tiny":
        face.resize((24, 24)).save(path, "PNG")
    t = time.perf_counter()
    code, out = animate(tmp_path, path, speech)
    assert time.perf_counter() - t < 2.0  # from the header: nothing large is allocated or decoded
    assert_refused(code, out, capsys, expect)


# -- options ------------------------------------------------------------------------------------------


def run(argv: list[str]) -> int:
    """main(argv)'s exit code, also when argparse refuses a malformed flag (it exits by SystemExit)."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def assert_one_line(code: int, out: Path, capsys, expect: str) -> None:
    """Like assert_refused, for errors argparse may raise too ("talkface animate: error: ...")."""
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("talkface") and "error: " in lines[0], err
    assert expect in lines[0] and "Traceback" not in err and "internal error" not in err, err
    assert not out.exists() and not out.parent.exists()


OPTION_CASES = [
    (["--size", "abc"], "argument --size: invalid int value: 'abc'"),
    (["--size", "1.5"], "argument --size: invalid int value: '1.5'"),
    (["--size", "100"], "--size 100 is out of range: it must be between 128 and 2048"),
    (["--size", "4096"], "--size 4096 is out of range"),
    (["--fps", "nan"], "--fps nan: not a finite number"),
    (["--fps", "inf"], "--fps inf: not a finite number"),
    (["--fps", "1e400"], "--fps inf: not a finite number"),
    (["--fps", "0"], "--fps 0.0 is out of range: it must be between 1 and 60"),
    (["--fps", "61"], "--fps 61.0 is out of range"),
    (["--fps", "fast"], "argument --fps: invalid float value: 'fast'"),
    (["--seed", "-1"], "--seed -1 is out of range"),
    (["--seed", "2147483648"], "--seed 2147483648 is out of range"),
    (["--seed", "1.5"], "argument --seed: invalid int value: '1.5'"),
    (["--motion-scale", "inf"], "--motion-scale inf: not a finite number"),
    (["--motion-scale", "nan"], "--motion-scale nan: not a finite number"),
    (["--motion-scale", "-0.1"], "--motion-scale -0.1 is out of range"),
    (["--motion-scale", "3.5"], "--motion-scale 3.5 is out of range"),
    (["--expression-scale", "nan"], "--expression-scale nan: not a finite number"),
    (["--expression-scale", "2.5"], "--expression-scale 2.5 is out of range"),
    (["--gaze", "1,2,3"], "argument --gaze: expected two numbers like 5,-3, got '1,2,3'"),
    (["--gaze", "left"], "argument --gaze: expected two numbers like 5,-3, got 'left'"),
    (["--gaze", ""], "argument --gaze: expected two numbers"),
    (["--gaze", "nan,0"], "--gaze nan: not a finite number"),
    (["--gaze", "0,-inf"], "--gaze -inf: not a finite number"),
    (["--gaze", "0,26"], "--gaze 26.0 is out of range: it must be between -25 and 25"),
    (["--head-distance", "nan"], "--head-distance nan: not a finite number"),
    (["--head-distance", "0.5"], "--head-distance 0.5 is out of range"),
    (["--crf", "52"], "--crf 52 is out of range"),
    (["--crf", "-1"], "--crf -1 is out of range"),
    (["--crf", "high"], "argument --crf: invalid int value: 'high'"),
    (["--emotion-strength", "nan"], "--emotion-strength nan: not a finite number"),
    (["--emotion-strength=-inf"], "--emotion-strength -inf: not a finite number"),
    (["--emotion-strength", "-inf"], "argument --emotion-strength: expected one argument"),  # -inf: a flag?
    (["--emotion-strength", "1.6"], "--emotion-strength 1.6 is out of range"),
    (["--generator", "magic"], "argument --generator: invalid choice: 'magic'"),
    (["--emotion", "joyful"], "--emotion 'joyful' is not one of: neutral, happy"),
    (["--emotion", ""], "--emotion '' is not one of"),
    (["--emotion", "happy@1,,sad@2"], "--emotion '' is not one of"),
    (["--emotion", "happy@soon"], "'happy@soon' is not NAME[:STRENGTH][@SECONDS]"),
    (["--emotion", "happy@1@2"], "'happy@1@2' is not NAME[:STRENGTH][@SECONDS]"),
    (["--emotion", "happy:0.5:2"], "'happy:0.5:2' is not NAME[:STRENGTH][@SECONDS]"),
    (["--emotion", "happy@1,sad@0.5"], "keyframe times must increase: sad@0.5 comes after happy@1"),
    (["--emotion", "happy@1,sad@1"], "keyframe times must increase"),
    (["--emotion", "happy@-1"], "the keyframe time -1 s is negative"),
    (["--emotion", "happy@nan"], "the keyframe time nan s is not a finite number"),
    (["--emotion", "happy@inf"], "the keyframe time inf s is not a finite number"),
    (["--emotion", "happy:nan"], "strength nan is out of range"),
    (["--emotion", "happy:9@0,sad@1"], "strength 9 is out of range: it must be between 0 and 1.5"),
    (["--emotion", "neutral:0.5"], "neutral takes no strength"),
]


@pytest.mark.parametrize("flags,expect", OPTION_CASES, ids=[" ".join(flags) for flags, _ in OPTION_CASES])
def test_animate_options_refused_in_one_line(tmp_path, portrait, speech, capsys, flags, expect):
    out = tmp_path / "out" / "video.mp4"
    t = time.perf_counter()
    code = run(["animate", str(portrait), str(speech), "-o", str(out), "--size", "128", "-q", *flags])
    assert time.perf_counter() - t < 1.0  # checked before the portrait or the audio is read
    assert_one_line(code, out, capsys, expect)


@pytest.mark.parametrize(
    "command,flags,expect",
    [
        ("say", ["--fps", "nan"], "--fps nan: not a finite number"),
        ("say", ["--gaze", "1,2,3"], "expected two numbers like 5,-3"),
        ("say", ["--emotion", "happy@2,sad@1"], "keyframe times must increase"),
        ("drive", ["--fps", "inf"], "--fps inf: not a finite number"),
        ("drive", ["--motion-scale", "nan"], "--motion-scale nan: not a finite number"),
        ("drive", ["--emotion", "happy:2"], "strength 2 is out of range"),
        ("drive", ["--seed", "1"], "--seed does not apply: drive takes its motion from the driving video"),
    ],
)
def test_say_and_drive_refuse_options_in_one_line(tmp_path, portrait, speech, capsys, command, flags, expect):
    out = tmp_path / "out" / "video.mp4"
    second = "Hello." if command == "say" else str(speech)
    code = run([command, str(portrait), second, "-o", str(out), "--size", "128", "-q", *flags])
    assert_one_line(code, out, capsys, expect)


# -- outputs ------------------------------------------------------------------------------------------


def test_missing_folders_are_created_and_a_failed_run_makes_none(tmp_path, portrait, speech, capsys):
    out = tmp_path / "new" / "deeper" / "video.mp4"
    assert main(["animate", str(portrait), str(speech), "-o", str(out), "--size", "128", "-q"]) == 0
    assert_video(out, 1.0)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    out = tmp_path / "other" / "video.mp4"
    code = main(["animate", str(bad), str(speech), "-o", str(out), "--size", "128", "-q"])
    assert_refused(code, out, capsys, "cannot read")
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("case", ["folder_named_mp4", "file_as_folder", "read_only_folder"])
def test_unwritable_outputs_refused_before_any_work(tmp_path, portrait, speech, capsys, case):
    place = tmp_path / "place"
    place.mkdir()
    if case == "folder_named_mp4":
        out, expect = place / "video.mp4", "is a folder; give a file name ending in .mp4"
        out.mkdir()
    elif case == "file_as_folder":
        (place / "notes").write_text("a file")
        out, expect = place / "notes" / "video.mp4", "notes is not a folder"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes in a read-only folder")
        out, expect = place / "sub" / "video.mp4", "permission denied"
        place.chmod(0o500)
    before = sorted(p.name for p in place.iterdir())
    t = time.perf_counter()
    try:
        code = main(["animate", str(portrait), str(speech), "-o", str(out), "--size", "128", "-q"])
    finally:
        place.chmod(0o700)
    assert time.perf_counter() - t < 1.0  # refused before the portrait is analysed
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("talkface: error: ") and expect in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in place.iterdir()) == before  # no temporary file, nothing made
    if case == "folder_named_mp4":
        assert not any(out.iterdir())


@pytest.mark.parametrize("case", ["bad_portrait", "no_face", "bad_audio"])
def test_an_existing_output_survives_a_failed_run(tmp_path, portrait, speech, capsys, case):
    out = tmp_path / "video.mp4"
    out.write_bytes(b"an earlier video" * 1000)
    image, audio, expect = portrait, speech, "cannot read audio"
    if case == "bad_portrait":
        image, expect = tmp_path / "bad.png", "cannot read"
        image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    elif case == "no_face":
        image, expect = tmp_path / "wall.png", "no face found in the portrait"
        Image.new("RGB", (256, 256), (150, 140, 130)).save(image)
    else:
        audio = tmp_path / "noise.wav"
        audio.write_bytes(np.random.default_rng(1).integers(0, 256, 20_000, np.uint8).tobytes())
    code = main(["animate", str(image), str(audio), "-o", str(out), "--size", "128", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("talkface: error: ") and expect in err and len(err.splitlines()) == 1
    assert out.read_bytes() == b"an earlier video" * 1000
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".mp4") == ["video.mp4"]


@pytest.mark.parametrize("existing", [False, True])
def test_ctrl_c_mid_render_leaves_nothing(tmp_path, portrait, speech, capsys, monkeypatch, existing):
    def interrupt(done: int, total: int) -> None:
        if done == 5:  # the encoder holds frames and the temporary file is open
            raise KeyboardInterrupt

    monkeypatch.setattr(talkface.cli, "_progress_bar", lambda enabled: (interrupt, None, lambda: None))
    out = tmp_path / "out" / "video.mp4"
    if existing:
        out.parent.mkdir()
        out.write_bytes(b"an earlier video")
    code = main(["animate", str(portrait), str(speech), "-o", str(out), "--size", "128", "-q"])
    assert code == 130
    assert capsys.readouterr().err.strip() == "talkface: interrupted"
    left = [p.name for p in out.parent.iterdir()] if out.parent.exists() else []
    assert left == (["video.mp4"] if existing else [])  # no temporary file beside it
    if existing:
        assert out.read_bytes() == b"an earlier video"


# -- say ----------------------------------------------------------------------------------------------


def assert_playable(out: Path, audio: bool = True) -> int:
    """A complete H.264 MP4 (with AAC sound if `audio`) and nothing beside it; returns its frame count."""
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert bool(c.streams.audio) == audio
        frames = sum(1 for _ in c.decode(video=0))
    assert frames >= 1
    assert [p.name for p in out.parent.iterdir()] == [out.name]
    return frames


@pytest.mark.parametrize(
    "text,expect",
    [
        ("", "the text is empty"),
        ("  \n\t  ", "the text is empty"),
        ("\x07\x1b\x00", "the text is empty"),
        ("Hello. " * 30_000, f"the text is too long (210000 characters); the limit is {MAX_TEXT_CHARS}"),
    ],
    ids=["empty", "whitespace", "only_control_characters", "210_KB"],
)
def test_say_refuses_text_in_one_line(tmp_path, portrait, capsys, text, expect):
    out = tmp_path / "out" / "video.mp4"
    t = time.perf_counter()
    code = main(["say", str(portrait), text, "-o", str(out), "--size", "128", "-q"])
    assert time.perf_counter() - t < 2.0
    assert_refused(code, out, capsys, expect)


def test_say_reads_control_characters_as_spaces(tmp_path, portrait):
    out = tmp_path / "out" / "video.mp4"
    text = "Hi\x1b[1m\x07 there\x00\x7f."
    assert main(["say", str(portrait), text, "-o", str(out), "--size", "128", "-q"]) == 0
    assert assert_playable(out) >= 10


def test_say_unknown_voice(tmp_path, portrait, capsys):
    out = tmp_path / "out" / "video.mp4"
    code = main(["say", str(portrait), "Hello.", "--voice", "klingon", "-o", str(out), "--size", "128", "-q"])
    assert_refused(code, out, capsys, "unknown voice 'klingon'; available voices: af, ")


# -- drive --------------------------------------------------------------------------------------------


def face_video(path: Path, frames: int, without_face: range | tuple = ()) -> Path:
    """A 192 x 192 H.264 clip of the still portrait (no audio); the frames in `without_face` are a flat
    grey, as if the face had left the picture."""
    face = np.asarray(Image.open(asset_path("portrait.jpg")).convert("RGB").resize((192, 192)))
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width = video.height = 192
        video.pix_fmt = "yuv420p"
        for i in range(frames):
            pixels = np.full_like(face, 128) if i in without_face else face
            f = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            f.pts = i
            for packet in video.encode(f):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return path


def drive(tmp_path, image, video) -> tuple[int, Path]:
    out = tmp_path / "out" / "video.mp4"
    return main(["drive", str(image), str(video), "-o", str(out), "--size", "128", "-q"]), out


def test_drive_holds_the_face_through_frames_without_it(tmp_path, portrait):
    code, out = drive(tmp_path, portrait, face_video(tmp_path / "gap.mp4", 15, without_face=range(5, 10)))
    assert code == 0
    assert assert_playable(out, audio=False) == 15
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24").astype(np.float32) for f in c.decode(video=0)]
    # Every frame shows the face (a lost face would differ by tens of levels), and the frames without it
    # hold the nearest tracked one: 5, 6 the pose of 4, and 7-9 that of 10 (the tracker re-finds the face
    # there with a slightly different pose, so 4 and 10 differ by ~1.5 levels).
    assert max(np.abs(f - frames[2]).mean() for f in frames) < 4.0
    for held, tracked in ((5, 4), (6, 4), (8, 10), (9, 10)):
        assert np.abs(frames[held] - frames[tracked]).mean() < 1.0, (held, tracked)


@pytest.mark.parametrize(
    "case,expect",
    [
        ("no_face_at_all", "no face found in the driving video"),
        ("random_bytes", "cannot read video"),
        ("short_text", "cannot read video"),
        ("audio_only", "has no video stream"),
        ("missing", "No such file or directory"),
    ],
)
def test_drive_refuses_driving_videos_in_one_line(tmp_path, portrait, speech, capsys, case, expect):
    video = tmp_path / "driving.mp4"
    if case == "no_face_at_all":
        face_video(video, 10, without_face=range(10))
    elif case == "random_bytes":
        video.write_bytes(np.random.default_rng(2).integers(0, 256, 20_000, np.uint8).tobytes())
    elif case == "short_text":  # FFmpeg takes it for a text "video" whose frames do not decode
        video.write_text("not a video")
    elif case == "audio_only":
        video = speech
    code, out = drive(tmp_path, portrait, video)
    assert_refused(code, out, capsys, expect)


# -- the portrait, for say and drive ------------------------------------------------------------------


@pytest.mark.parametrize("command", ["say", "drive"])
@pytest.mark.parametrize("case", ["unreadable", "no_face"])
def test_say_and_drive_refuse_a_bad_portrait(tmp_path, speech, capsys, command, case):
    image = tmp_path / "portrait.jpg"
    if case == "unreadable":
        image.write_text("not an image\n" * 10)
        expect = "cannot read"
    else:
        Image.new("RGB", (256, 256), (150, 140, 130)).save(image, "JPEG")
        expect = "no face found in the portrait"
    out = tmp_path / "out" / "video.mp4"
    if command == "say":
        code = main(["say", str(image), "Hello.", "-o", str(out), "--size", "128", "-q"])
    else:
        code = main(["drive", str(image), str(face_video(tmp_path / "d.mp4", 5)), "-o", str(out), "-q"])
    assert_refused(code, out, capsys, expect)
