"""The command line end to end: the main job, and every kind of bad input."""

import argparse
import dataclasses
import json
import subprocess
import sys

import av
import cv2
import numpy as np
import pytest
from conftest import write_audio

from talkface import config
from talkface.cli import _options, _shown, build_parser, main


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "talkface.cli", *map(str, args)], capture_output=True, text=True
    )


def probe(path):
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        frames = sum(1 for _ in c.decode(v))
        return {
            "vcodec": v.codec_context.name,
            "acodec": a.codec_context.name,
            "size": (v.width, v.height),
            "frames": frames,
            "rate": float(v.average_rate),
            "comment": c.metadata.get("comment", ""),
        }


def test_animate_writes_h264_aac_with_the_audio_duration(tmp_path, portrait, speech_wav):
    out = tmp_path / "talking.mp4"
    assert main(["animate", str(portrait), str(speech_wav), "-o", str(out), "--size", "256", "-q"]) == 0
    info = probe(out)
    assert info["vcodec"] == "h264" and info["acodec"] == "aac" and info["size"] == (256, 256)
    assert abs(info["frames"] / info["rate"] - 3.5) <= 1 / 25
    assert "talkface" in info["comment"]
    assert [p.name for p in tmp_path.iterdir()] == ["talking.mp4"]  # no temporary left behind


def test_silence_only_audio_gives_an_idle_face(tmp_path, portrait):
    wav = write_audio(tmp_path / "silence.wav", np.zeros(16000 * 2, np.float32), 16000)
    out = tmp_path / "idle.mp4"
    assert (
        main(
            ["animate", str(portrait), str(wav), "-o", str(out), "--size", "128", "--motion-scale", "0", "-q"]
        )
        == 0
    )
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    assert len(frames) == 50
    # Only blinks change the picture: most frames equal the first up to encoding noise.
    diffs = [np.abs(f - frames[0]).mean() for f in frames]
    assert np.median(diffs) < 1.5


@pytest.mark.parametrize(
    "case,expect",
    [
        ("missing_portrait", "portrait file not found"),
        ("text_portrait", "cannot read"),
        ("faceless_portrait", "no face found"),
        ("missing_audio", "audio file not found"),
        ("junk_audio", "cannot read audio"),
        ("empty_audio", "no audio samples"),
        ("size0", "--size 0 is out of range"),
        ("fps1000", "--fps 1000"),
        ("bad_output", "output must be an .mp4"),
    ],
)
def test_bad_input_one_line_exit_2_no_output(tmp_path, portrait, speech_wav, case, expect):
    audio, image, extra = speech_wav, portrait, []
    out = tmp_path / "out.mp4"
    if case == "missing_portrait":
        image = tmp_path / "nope.jpg"
    elif case == "text_portrait":
        image = tmp_path / "text.jpg"
        image.write_text("not an image")
    elif case == "faceless_portrait":
        image = tmp_path / "gradient.png"
        g = np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (300, 1))
        cv2.imwrite(str(image), cv2.merge([g, g[::-1], g.T]))
    elif case == "missing_audio":
        audio = tmp_path / "nope.wav"
    elif case == "junk_audio":
        audio = tmp_path / "junk.m4a"
        audio.write_bytes(b"\x00\x01junk" * 50)
    elif case == "empty_audio":
        audio = write_audio(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    elif case == "size0":
        extra = ["--size", "0"]
    elif case == "fps1000":
        extra = ["--fps", "1000"]
    elif case == "bad_output":
        out = tmp_path / "out.txt"
    r = run_cli("animate", image, audio, "-o", out, "-q", *extra)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()
    assert not any(p.name.endswith(".tmp.mp4") for p in tmp_path.iterdir())


def test_unknown_option_is_one_line(portrait, speech_wav, tmp_path):
    r = run_cli("animate", portrait, speech_wav, "-o", tmp_path / "x.mp4", "--wobble", "3")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


# Each subcommand, the least it is run with, and the config class its options come from.
COMMANDS = {
    "animate": (["p.jpg", "a.wav", "-o", "x.mp4"], config.AnimateOptions),
    "say": (["p.jpg", "hello", "-o", "x.mp4"], config.AnimateOptions),
    "drive": (["p.jpg", "v.mp4", "-o", "x.mp4"], config.DriveOptions),
    "demo": ([], config.AnimateOptions),
    "eval": (["clips"], config.EvalOptions),
    "bench": ([], config.BenchOptions),
    "batch": (["jobs.csv"], config.BatchOptions),
    "serve": ([], config.ServerSettings),
    "verify": (["v.mp4"], config.VerifyOptions),
}
# Flags that are not options of the work: where its input and output are and how the result is shown.
NOT_OPTIONS = {"help", "output", "quiet", "transcript", "voice", "report", "json"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_comes_from_config(command):
    """One flag per field of the command's config class, with its default in the help (a bool's flag sets the
    other value); an unset flag keeps the dataclass default."""
    argv, cls = COMMANDS[command]
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    shown = [a for a in sub._actions if a.option_strings and a.help != argparse.SUPPRESS]
    flags = {a.dest: a for a in shown}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert set(flags) - NOT_OPTIONS == set(fields)
    for name, f in fields.items():
        action = flags[name]
        assert action.default is None, name
        if isinstance(f.default, bool):
            assert action.const is (not f.default), name
        elif f.default is not None:
            assert f"default {_shown(f.default)}" in action.help, name
    assert _options(parser.parse_args([command, *argv]), cls) == cls()
    if command == "say":
        assert flags["voice"].default == config.DEFAULT_VOICE


@pytest.mark.parametrize(
    "args,expect",
    [
        (["bench", "--seconds", "0"], "--seconds 0.0 is out of range"),
        (["bench", "--size", "big"], "argument --size: invalid int value: 'big'"),
        (["verify", "v.mp4", "--frames", "0"], "--frames 0 is out of range"),
        (["eval", "clips", "--split", "test"], "argument --split: invalid choice: 'test'"),
        (["serve", "--jpeg-quality", "101"], "--jpeg-quality 101 is out of range"),
    ],
)
def test_bad_option_values_are_one_line_exit_2(args, expect):
    r = run_cli(*args)
    assert r.returncode == 2 and expect in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_bench_json_is_one_object_on_the_last_line():
    r = run_cli("bench", "--json", "--seconds", "2", "--size", "256")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("stages_ms", "render_fps", "realtime_factor", "peak_rss_mb"):
        assert key in result
    assert set(result["stages_ms"]) >= {"face", "audio", "motion", "render", "encode"}
    assert result["render_fps"] > 0 and 0 < result["realtime_factor"]


def test_say_renders_text_in_two_languages(tmp_path, portrait):
    for voice, text in (("en-us", "Hello, world."), ("de", "Guten Morgen.")):
        out = tmp_path / f"say_{voice}.mp4"
        assert (
            main(["say", str(portrait), text, "-o", str(out), "--voice", voice, "--size", "128", "-q"]) == 0
        )
        info = probe(out)
        assert info["frames"] > 10 and info["acodec"] == "aac"


def test_say_unknown_voice_lists_voices(tmp_path, portrait):
    r = run_cli("say", portrait, "hi", "-o", tmp_path / "x.mp4", "--voice", "klingon")
    assert r.returncode == 2 and "available voices" in r.stderr and "en-us" in r.stderr
    assert not (tmp_path / "x.mp4").exists()


def test_gaze_option_is_parsed_and_checked(tmp_path, portrait, speech_wav):
    r = run_cli("animate", portrait, speech_wav, "-o", tmp_path / "x.mp4", "--gaze", "abc")
    assert r.returncode == 2 and "--gaze" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("animate", portrait, speech_wav, "-o", tmp_path / "x.mp4", "--gaze", "40,0")
    assert r.returncode == 2 and "out of range" in r.stderr


def test_full_frame_output_has_the_portrait_size(tmp_path, portrait, speech_wav):
    out = tmp_path / "full.mp4"
    assert (
        main(
            ["animate", str(portrait), str(speech_wav), "-o", str(out), "--full-frame", "--size", "128", "-q"]
        )
        == 0
    )
    assert probe(out)["size"] == (512, 512)


def test_every_video_carries_the_watermark_and_says_it_is_synthetic(tmp_path, portrait, speech_wav):
    out = tmp_path / "marked.mp4"
    assert (
        main(["animate", str(portrait), str(speech_wav), "-o", str(out), "--size", "256", "--label", "-q"])
        == 0
    )
    r = run_cli("verify", out)
    assert r.returncode == 0 and "talkface watermark found" in r.stdout and "talkface 0.1.0" in r.stdout
    with av.open(str(out)) as c:
        assert "AI-generated" in c.metadata.get("description", "")
    # A video talkface did not make: no mark, exit 1; an unreadable file: exit 2.
    plain = tmp_path / "plain.mp4"
    from talkface.video.encode import Mp4Writer

    frame = cv2.resize(cv2.cvtColor(cv2.imread(str(portrait)), cv2.COLOR_BGR2RGB), (256, 256))
    with Mp4Writer(plain, (256, 256), 25.0, speech_wav) as w:
        for _ in range(30):
            w.write(frame)
    assert run_cli("verify", plain).returncode == 1
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"nope" * 100)
    r = run_cli("verify", junk)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_animate_with_a_transcript(tmp_path, portrait, capsys):
    from talkface.audio.tts import synthesize

    text = "Pack my box with five dozen liquor jugs"
    speech = synthesize(text, "en-us")
    wav = write_audio(tmp_path / "speech.wav", speech.samples, speech.sample_rate)
    (tmp_path / "words.txt").write_text(text + "\n")
    out = tmp_path / "aligned.mp4"
    args = ["animate", str(portrait), str(wav), "-o", str(out), "--size", "128", "-q"]
    assert main([*args, "--transcript", str(tmp_path / "words.txt")]) == 0
    assert out.exists()
    out.unlink()
    wrong = "the weather in spring is mild and the birds sing all day long near the river"
    assert main([*args, "--transcript", wrong]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "transcript" in err[0]
    assert not out.exists()


def test_the_progress_line_shows_the_stages_then_the_frames():
    """The command's progress callbacks: a stage report (talkface.stages) before the frames, the frames after;
    a late stage report once frames have started is ignored. Off a terminal the bars are off, but the calls
    are the same."""
    from talkface.cli import _progress_bar

    update, stage, close = _progress_bar(True)
    stage("recognising phones", 0.0)
    stage("recognising phones", 0.5)
    stage("separating the voice from the music", 1.0)
    update(1, 10)
    stage("recognising phones", 1.0)
    update(10, 10)
    close()
    assert _progress_bar(False)[:2] == (None, None)
