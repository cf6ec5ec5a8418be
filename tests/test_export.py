"""`talkface motion`: the motion as ARKit blendshapes (JSON, Live Link Face CSV), Oculus visemes, Rhubarb Lip
Sync cues (TSV, JSON, XML) and an animated glTF head, each checked against its format's rules."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from talkface.cli import _options, _shown, build_parser, main
from talkface.config import MotionExportOptions
from talkface.export import rhubarb as R
from talkface.export.arkit import ARKIT, ARKIT_NAMES, COMPONENTS, arkit_track, fit
from talkface.export.visemes import OCULUS_VISEMES, oculus_viseme, viseme_weights
from talkface.face.expression import EMOTIONS, EXPRESSIONS
from talkface.motion.contract import MotionSequence, Phoneme

# ARKit's names as Apple lists them (ARFaceAnchor.BlendShapeLocation), and Live Link Face's CSV header.
APPLE = """eyeBlinkLeft eyeLookDownLeft eyeLookInLeft eyeLookOutLeft eyeLookUpLeft eyeSquintLeft eyeWideLeft
eyeBlinkRight eyeLookDownRight eyeLookInRight eyeLookOutRight eyeLookUpRight eyeSquintRight eyeWideRight
jawForward jawLeft jawRight jawOpen mouthClose mouthFunnel mouthPucker mouthLeft mouthRight mouthSmileLeft
mouthSmileRight mouthFrownLeft mouthFrownRight mouthDimpleLeft mouthDimpleRight mouthStretchLeft
mouthStretchRight mouthRollLower mouthRollUpper mouthShrugLower mouthShrugUpper mouthPressLeft mouthPressRight
mouthLowerDownLeft mouthLowerDownRight mouthUpperUpLeft mouthUpperUpRight browDownLeft browDownRight
browInnerUp browOuterUpLeft browOuterUpRight cheekPuff cheekSquintLeft cheekSquintRight noseSneerLeft
noseSneerRight tongueOut""".split()
LIVE_LINK_HEADER = (
    "Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,EyeLookInLeft,EyeLookOutLeft,EyeLookUpLeft,"
    "EyeSquintLeft,EyeWideLeft,EyeBlinkRight,EyeLookDownRight,EyeLookInRight,EyeLookOutRight,EyeLookUpRight,"
    "EyeSquintRight,EyeWideRight,JawForward,JawRight,JawLeft,JawOpen,MouthClose,MouthFunnel,MouthPucker,"
    "MouthRight,MouthLeft,MouthSmileLeft,MouthSmileRight,MouthFrownLeft,MouthFrownRight,MouthDimpleLeft,"
    "MouthDimpleRight,MouthStretchLeft,MouthStretchRight,MouthRollLower,MouthRollUpper,MouthShrugLower,"
    "MouthShrugUpper,MouthPressLeft,MouthPressRight,MouthLowerDownLeft,MouthLowerDownRight,MouthUpperUpLeft,"
    "MouthUpperUpRight,BrowDownLeft,BrowDownRight,BrowInnerUp,BrowOuterUpLeft,BrowOuterUpRight,CheekPuff,"
    "CheekSquintLeft,CheekSquintRight,NoseSneerLeft,NoseSneerRight,TongueOut,HeadYaw,HeadPitch,HeadRoll,"
    "LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll"
)
SPEECH_S = 3.5  # the speech_wav fixture: 2.5 s of speech-like sound, 1 s of silence


def _still(n: int, fps: float = 25.0, **columns) -> MotionSequence:
    """A still motion with some expression coefficients or emotions set (name=value)."""
    m = MotionSequence.still(n, fps)
    expr, emo = m.expression.copy(), m.emotion.copy()
    for name, value in columns.items():
        if name in EXPRESSIONS:
            expr[:, EXPRESSIONS.index(name)] = value
        else:
            emo[:, EMOTIONS.index(name)] = value
    return MotionSequence(expr, m.rotation, m.translation, m.gaze, fps, emo)


def _motion(tmp_path: Path, audio: Path, fmt: str, suffix: str, *flags: str) -> Path:
    out = tmp_path / f"out{suffix}"
    assert main(["motion", str(audio), "--format", fmt, "-o", str(out), "-q", *flags]) == 0
    assert out.is_file() and not [p for p in out.parent.iterdir() if p.name.startswith(".")]
    return out


# -- ARKit ------------------------------------------------------------------------------------------------


def test_arkit_names_are_apples_52_in_live_link_faces_order():
    assert set(ARKIT_NAMES) == set(APPLE) and len(ARKIT_NAMES) == 52
    from talkface.export.arkit import ROTATION_COLUMNS

    names = [n[0].upper() + n[1:] for n in ARKIT_NAMES]
    assert ",".join(["Timecode", "BlendShapeCount", *names, *ROTATION_COLUMNS]) == LIVE_LINK_HEADER


def test_the_fitted_mapping_reproduces_each_motion_component():
    """Fitted on the mesh: the jaw, pucker, blinks and every action unit are reproduced exactly (they have an
    ARKit twin); the learned lip spreading and brow raise mostly; no weight leaves 0..1."""
    f = fit()
    explained = dict(zip(COMPONENTS, f.explained, strict=True))
    assert f.weights.min() >= 0 and f.weights.max() <= 1
    for name in ("jaw_open+", "lip_round+", "blink_left+", "blink_right+", "brow_raise+"):
        assert explained[name] > 0.97, (name, explained[name])
    assert explained["lip_spread+"] > 0.8 and explained["lip_spread-"] > 0.8
    for name in COMPONENTS[2 * len(EXPRESSIONS) :]:
        if name.endswith("+"):
            assert explained[name] > 0.99, (name, explained[name])
    w = dict(zip(COMPONENTS, f.weights, strict=True))
    assert w["jaw_open+"][ARKIT["jawOpen"]] == pytest.approx(1.0, abs=0.02)
    assert w["lip_corner_pull+"][ARKIT["mouthSmileLeft"]] == pytest.approx(1.0, abs=0.02)
    assert w["lip_spread+"][ARKIT["mouthSmileLeft"]] > 0.3  # speech's spreading reads partly as a smile


def test_emotions_and_gaze_reach_the_blendshapes():
    happy = arkit_track(_still(3, happy=1.0))
    assert happy.column("mouthSmileLeft")[0] == pytest.approx(happy.column("mouthSmileRight")[0], abs=1e-3)
    assert happy.column("mouthSmileLeft")[0] > 0.9 and happy.column("cheekSquintLeft")[0] > 0.9
    contempt = arkit_track(_still(3, contemptuous=1.0))  # a one-sided smile, on the subject's right
    assert contempt.column("mouthSmileRight")[0] > 0.9 > 0.2 > contempt.column("mouthSmileLeft")[0]
    angry = arkit_track(_still(3, angry=1.0))
    assert angry.column("browDownLeft")[0] > 0.9 and angry.column("mouthPressLeft")[0] > 0.9
    blink = arkit_track(_still(3, blink_left=1.0))
    assert blink.column("eyeBlinkLeft")[0] > 0.9 and blink.column("eyeBlinkRight")[0] < 0.1
    m = MotionSequence.still(2, 25.0)
    gaze = np.array([[15.0, -6.0], [-30.0, 45.0]], np.float32)  # right of the viewer and up; left and down
    g = arkit_track(MotionSequence(m.expression, m.rotation, m.translation, gaze, 25.0))
    assert g.column("eyeLookOutLeft")[0] == pytest.approx(0.5) and g.column("eyeLookInRight")[0] == 0.5
    assert g.column("eyeLookUpLeft")[0] == pytest.approx(0.2) and g.column("eyeLookDownLeft")[0] == 0
    assert g.column("eyeLookInLeft")[1] == 1.0 and g.column("eyeLookOutRight")[1] == 1.0
    assert g.column("eyeLookDownRight")[1] == 1.0  # clipped at 1
    still = arkit_track(MotionSequence.still(4, 25.0))
    assert not still.weights.any()


def test_arkit_json_and_live_link_csv(tmp_path, speech_wav):
    doc = json.loads(_motion(tmp_path, speech_wav, "arkit", ".json", "--generator", "rules").read_text())
    assert doc["names"] == list(ARKIT_NAMES) and doc["fps"] == 25.0
    assert doc["duration"] == pytest.approx(SPEECH_S, abs=1e-3)
    frames = doc["frames"]
    assert len(frames) == round(SPEECH_S * 25)
    w = np.array([f["weights"] for f in frames])
    assert w.shape == (len(frames), 52) and w.min() >= 0 and w.max() <= 1
    jaw = w[:, ARKIT["jawOpen"]]
    assert jaw[:60].max() > 0.15 and jaw[-15:].max() < 0.03  # the mouth moves with the voice, rests after
    assert all(set(f["head"]) == {"yaw", "pitch", "roll"} for f in frames)
    assert frames[10]["time"] == pytest.approx(0.4)

    text = _motion(
        tmp_path, speech_wav, "arkit-csv", ".csv", "--generator", "rules", "--fps", "30"
    ).read_text()
    lines = text.splitlines()
    assert lines[0] == LIVE_LINK_HEADER and len(lines) == 1 + round(SPEECH_S * 30)
    rows = [line.split(",") for line in lines[1:]]
    assert all(len(r) == 63 and r[1] == "61" for r in rows)
    assert rows[0][0] == "00:00:00:00.000" and rows[31][0] == "00:00:01:01.000"
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d:\d\d\.\d\d\d", r[0]) for r in rows)
    values = np.array([[float(v) for v in r[2:54]] for r in rows])
    assert values.min() >= 0 and values.max() <= 1
    head = np.array([[float(v) for v in r[54:57]] for r in rows])
    assert np.abs(head).max() < 0.5  # radians: a talking head turns a few degrees


def test_the_same_seed_gives_the_same_motion_and_controls_apply(tmp_path, speech_wav):
    a = json.loads(_motion(tmp_path / "a", speech_wav, "arkit", ".json", "--generator", "rules").read_text())
    b = json.loads(_motion(tmp_path / "b", speech_wav, "arkit", ".json", "--generator", "rules").read_text())
    assert a == b
    c = json.loads(
        _motion(
            tmp_path / "c", speech_wav, "arkit", ".json", "--generator", "rules", "--emotion", "happy:1",
            "--motion-scale", "0",
        ).read_text()
    )  # fmt: skip
    smile = np.array([f["weights"][ARKIT["mouthSmileLeft"]] for f in c["frames"]])
    assert smile.min() > 0.8 and all(f["head"] == {"yaw": 0, "pitch": 0, "roll": 0} for f in c["frames"])


# -- visemes ----------------------------------------------------------------------------------------------


def test_oculus_visemes_from_phonemes():
    assert OCULUS_VISEMES == (
        "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou",
    )  # fmt: skip
    symbols = ("_:", "p", "f", "T", "t", "k", "tS", "s", "n", "r", "A:", "E", "i:")
    assert [oculus_viseme(s) for s in symbols] == [
        "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih",
    ]  # fmt: skip
    phonemes = (Phoneme(0.5, 0.62, "m"), Phoneme(0.62, 0.9, "A:"), Phoneme(0.9, 1.1, "u:"))
    w = viseme_weights(phonemes, 40, 25.0)
    assert w.shape == (40, 15) and np.allclose(w.sum(1), 1, atol=1e-5) and w.min() >= 0
    top = [OCULUS_VISEMES[i] for i in w.argmax(1)]
    assert top[0] == "sil" and top[-1] == "sil"
    at = lambda t: top[int(t * 25 - 0.5 - 0.04 * 25 + 0.5)]  # noqa: E731  (frame showing time t)
    assert at(0.56) == "PP" and at(0.78) == "aa" and at(1.02) == "ou"
    assert np.allclose(viseme_weights((), 5, 25.0)[:, 0], 1)


def test_visemes_file(tmp_path, speech_wav):
    doc = json.loads(_motion(tmp_path, speech_wav, "visemes", ".json", "--generator", "rules").read_text())
    assert doc["names"] == list(OCULUS_VISEMES) and len(doc["frames"]) == round(SPEECH_S * 25)
    w = np.array([f["weights"] for f in doc["frames"]])
    assert np.allclose(w.sum(1), 1, atol=1e-3)
    assert w[-5:, 0].min() > 0.9  # silence at the end


# -- Rhubarb ------------------------------------------------------------------------------------------------

CUES = [R.MouthCue(0.0, 0.05, "X"), R.MouthCue(0.05, 0.27, "D"), R.MouthCue(0.27, 0.31, "C")]


def test_rhubarb_layouts_are_rhubarbs_byte_for_byte(tmp_path):
    """As Rhubarb 1.13's exporters write them (tsv-exporter.cpp, json-exporter.cpp, xml-exporter.cpp)."""
    assert R.rhubarb_tsv(CUES, 0.31) == "0.00\tX\n0.05\tD\n0.27\tC\n0.31\tX\n"
    assert R.rhubarb_tsv(CUES, 0.31, extended="") == "0.00\tX\n0.05\tD\n0.27\tC\n0.31\tA\n"
    sound = tmp_path / "a b.wav"
    assert R.rhubarb_json(CUES, 0.31, sound) == (
        "{\n"
        '  "metadata": {\n'
        f'    "soundFile": "{sound}",\n'
        '    "duration": 0.31\n'
        "  },\n"
        '  "mouthCues": [\n'
        '    { "start": 0.00, "end": 0.05, "value": "X" },\n'
        '    { "start": 0.05, "end": 0.27, "value": "D" },\n'
        '    { "start": 0.27, "end": 0.31, "value": "C" }\n'
        "  ]\n"
        "}\n"
    )
    assert R.rhubarb_xml(CUES, 0.31, sound) == (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        "<rhubarbResult>\n"
        "  <metadata>\n"
        f"    <soundFile>{sound}</soundFile>\n"
        "    <duration>0.31</duration>\n"
        "  </metadata>\n"
        "  <mouthCues>\n"
        '    <mouthCue start="0.00" end="0.05">X</mouthCue>\n'
        '    <mouthCue start="0.05" end="0.27">D</mouthCue>\n'
        '    <mouthCue start="0.27" end="0.31">C</mouthCue>\n'
        "  </mouthCues>\n"
        "</rhubarbResult>\n"
    )


def test_rhubarb_cues_cover_the_audio_in_centiseconds():
    shapes = "XXAABBBCCDDEEFFGGHXX"
    cues = R.mouth_cues(shapes, 30.0, 20 / 30)
    assert cues[0].start == 0 and cues[-1].end == pytest.approx(0.67)
    assert all(a.end == b.start and a.shape != b.shape for a, b in zip(cues, cues[1:], strict=False))
    assert all(abs(c.start * 100 - round(c.start * 100)) < 1e-9 for c in cues)
    assert "".join(c.shape for c in cues) == "XABCDEFGHX"
    basic = R.mouth_cues(shapes, 30.0, 20 / 30, extended="")
    assert set(c.shape for c in basic) <= set("ABCDEF")  # G -> B, H -> C, X -> A as Rhubarb does
    assert R.mouth_cues("", 25.0, 0.0) == [R.MouthCue(0.0, 0.0, "X")]


def test_rhubarb_shapes_follow_the_mouth():
    jaw = np.array([0, 0.1, 0.18, 0.5, 0.2, 0.2, 0.1, 0.0])
    rnd = np.array([0, 0, 0, 0, 0.3, 0.6, 0, 0])
    m = MotionSequence.still(8, 10.0)
    expr = m.expression.copy()
    expr[:, EXPRESSIONS.index("jaw_open")], expr[:, EXPRESSIONS.index("lip_round")] = jaw, rnd
    motion = MotionSequence(expr, m.rotation, m.translation, m.gaze, 10.0)
    assert R.frame_shapes(motion, ()) == "XBCDEFBX"
    phonemes = (Phoneme(0.0, 0.1, "_"), Phoneme(0.1, 0.6, "a"), Phoneme(0.6, 0.8, "m"))
    assert R.frame_shapes(motion, phonemes) == "XBCDEFAA"


@pytest.mark.parametrize("suffix", [".tsv", ".json", ".xml"])
def test_rhubarb_files(tmp_path, speech_wav, suffix):
    out = _motion(tmp_path, speech_wav, "rhubarb", suffix, "--generator", "rules")
    text = out.read_text()
    if suffix == ".tsv":
        cues = R.parse_tsv(text)
        assert text.splitlines()[-1] == f"{SPEECH_S:.2f}\tX"
    elif suffix == ".json":
        doc = json.loads(text)
        assert doc["metadata"] == {"soundFile": str(speech_wav.absolute()), "duration": SPEECH_S}
        cues = [R.MouthCue(c["start"], c["end"], c["value"]) for c in doc["mouthCues"]]
    else:
        root = ET.fromstring(text)
        assert root.tag == "rhubarbResult" and root.find("metadata/duration").text == f"{SPEECH_S:.2f}"
        cues = [R.MouthCue(float(c.get("start")), float(c.get("end")), c.text) for c in root.iter("mouthCue")]
    assert cues[0].start == 0 and cues[-1].end == pytest.approx(SPEECH_S)
    assert all(a.end == b.start for a, b in zip(cues, cues[1:], strict=False))
    assert {c.shape for c in cues} <= set(R.SHAPES) and len({c.shape for c in cues}) >= 3
    assert cues[-1].shape == "X"  # silence at the end


# -- glTF -------------------------------------------------------------------------------------------------


def read_glb(data: bytes) -> tuple[dict, bytes]:
    """Check a GLB's container (glTF 2.0 spec, section 4.4) and return its JSON and binary chunk."""
    magic, version, length = struct.unpack_from("<4sII", data)
    assert magic == b"glTF" and version == 2 and length == len(data)
    json_len, json_type = struct.unpack_from("<I4s", data, 12)
    assert json_type == b"JSON" and json_len % 4 == 0
    doc = json.loads(data[20 : 20 + json_len])
    bin_len, bin_type = struct.unpack_from("<I4s", data, 20 + json_len)
    assert bin_type == b"BIN\0" and bin_len % 4 == 0 and 28 + json_len + bin_len == len(data)
    return doc, data[28 + json_len :]


SIZES = {5126: 4, 5123: 2}
COMPONENTS_OF = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


def accessor(doc: dict, blob: bytes, i: int) -> np.ndarray:
    """An accessor's data, after checking it lies in its view and its view in the buffer, aligned."""
    a = doc["accessors"][i]
    v = doc["bufferViews"][a["bufferView"]]
    size = SIZES[a["componentType"]] * COMPONENTS_OF[a["type"]]
    assert v["byteOffset"] % 4 == 0 and v["byteOffset"] + v["byteLength"] <= doc["buffers"][0]["byteLength"]
    assert a["count"] * size <= v["byteLength"]
    dtype = "<f4" if a["componentType"] == 5126 else "<u2"
    x = np.frombuffer(blob, dtype, a["count"] * COMPONENTS_OF[a["type"]], v["byteOffset"])
    x = x.reshape(a["count"], -1)
    if "min" in a:
        assert np.allclose(x.min(0), a["min"], atol=1e-6) and np.allclose(x.max(0), a["max"], atol=1e-6)
    return x


def check_gltf(data: bytes, duration: float, textured: bool) -> dict:
    """The structural rules of glTF 2.0 that a viewer relies on, checked on our head."""
    doc, blob = read_glb(data)
    assert doc["asset"]["version"] == "2.0" and len(doc["buffers"]) == 1 and "uri" not in doc["buffers"][0]
    prim = doc["meshes"][0]["primitives"][0]
    pos = accessor(doc, blob, prim["attributes"]["POSITION"])
    assert pos.shape == (468, 3) and "min" in doc["accessors"][prim["attributes"]["POSITION"]]
    normals = accessor(doc, blob, prim["attributes"]["NORMAL"])
    assert np.allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-4)
    idx = accessor(doc, blob, prim["indices"])
    assert idx.size == (854 + 2 * 14) * 3 and idx.max() < 468 and prim["mode"] == 4  # mesh + eye fans
    mouth = doc["meshes"][0]["primitives"][1]  # the mouth's dark inside, moving with the lips
    assert len(mouth["targets"]) == len(prim["targets"]) and accessor(doc, blob, mouth["indices"]).max() == 20
    names = doc["meshes"][0]["extras"]["targetNames"]
    assert len(names) == len(prim["targets"]) == len(doc["meshes"][0]["weights"]) and set(names) <= set(APPLE)
    assert {"jawOpen", "eyeBlinkLeft", "mouthSmileRight", "browInnerUp"} <= set(names)
    for t in prim["targets"]:
        assert (
            accessor(doc, blob, t["POSITION"]).shape == (468, 3) and "min" in doc["accessors"][t["POSITION"]]
        )
    jaw = accessor(doc, blob, prim["targets"][names.index("jawOpen")]["POSITION"])
    assert jaw[14, 1] < -0.02  # the lower lip's middle drops (glTF: +y up), metres
    anim = doc["animations"][0]
    for ch in anim["channels"]:
        sampler = anim["samplers"][ch["sampler"]]
        times = accessor(doc, blob, sampler["input"])[:, 0]
        out = accessor(doc, blob, sampler["output"])
        assert times[0] == 0 and times[-1] == pytest.approx(duration, abs=1e-5) and (np.diff(times) > 0).all()
        per_key = {"weights": len(names), "rotation": 1, "translation": 1}[ch["target"]["path"]]
        assert len(out) == len(times) * per_key
        if ch["target"]["path"] == "rotation":
            assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
        if ch["target"]["path"] == "weights":
            assert out.min() >= 0 and out.max() <= 1 and ch["target"]["node"] == 1
    if textured:
        uv = accessor(doc, blob, prim["attributes"]["TEXCOORD_0"])
        assert uv.min() >= 0 and uv.max() <= 1
        image = doc["bufferViews"][doc["images"][0]["bufferView"]]
        start = image["byteOffset"]
        assert blob[start : start + 3] == b"\xff\xd8\xff"  # a JPEG
        assert doc["materials"][0]["extensions"] == {"KHR_materials_unlit": {}}
    return doc


@pytest.mark.parametrize("textured", [False, True])
def test_gltf_head_is_valid_and_lasts_the_audio(tmp_path, speech_wav, portrait, textured):
    flags = ["--generator", "rules", "--fps", "30"] + (
        ["--portrait", str(portrait), "--texture-size", "256"] if textured else []
    )
    out = _motion(tmp_path, speech_wav, "gltf", ".glb", *flags)
    check_gltf(out.read_bytes(), SPEECH_S, textured)
    trimesh = pytest.importorskip("trimesh")
    scene = trimesh.load(out, force="scene")
    shapes = sorted((g.vertices.shape, g.faces.shape) for g in scene.geometry.values())
    assert shapes == [((21, 3), (20, 3)), ((468, 3), (882, 3))]
    validator = os.environ.get("TALKFACE_GLTF_VALIDATOR")  # a folder with node_modules/gltf-validator
    if validator and shutil.which("node"):
        script = (
            "const v=require('gltf-validator');const fs=require('fs');"
            "v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[1])))"
            ".then(r=>console.log(JSON.stringify(r.issues)))"
        )
        r = subprocess.run(["node", "-e", script, str(out)], cwd=validator, capture_output=True, text=True)
        issues = json.loads(r.stdout)
        assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, issues["messages"]


# -- command line -------------------------------------------------------------------------------------------


def test_every_flag_comes_from_config():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["motion"]
    shown = {a.dest: a for a in sub._actions if a.option_strings and a.help != argparse.SUPPRESS}
    fields = {f.name: f for f in dataclasses.fields(MotionExportOptions)}
    assert set(shown) - {"help", "output", "quiet", "transcript"} == set(fields)
    for name, f in fields.items():
        assert shown[name].default is None
        if f.default is not None and not isinstance(f.default, bool):
            assert f"default {_shown(f.default)}" in shown[name].help, name
    assert _options(parser.parse_args(["motion", "a.wav", "-o", "x.json"]), MotionExportOptions) == (
        MotionExportOptions()
    )


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "talkface.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "case,expect",
    [
        (["--format", "rhubarb", "-o", "{tmp}/x.mp4"], "must end in .tsv or .txt or .json or .xml"),
        (["--format", "gltf", "-o", "{tmp}/x.json"], "must end in .glb"),
        (["-o", "{tmp}"], "must end in .json"),
        (["-o", "{tmp}/x.json", "--format", "csv"], "invalid choice: 'csv'"),
        (["-o", "{tmp}/x.json", "--portrait", "{portrait}"], "--portrait applies to --format gltf only"),
        (["-o", "{tmp}/x.tsv", "--format", "rhubarb", "--extended-shapes", "GQ"], "only G, H and X"),
        (
            ["-o", "{tmp}/x.glb", "--format", "gltf", "--portrait", "{tmp}/none.jpg"],
            "portrait file not found",
        ),
        (["-o", "{tmp}/x.json", "--fps", "0"], "--fps 0.0 is out of range"),
        (["-o", "{tmp}/x.json", "--emotion", "joyful"], "--emotion 'joyful' is not one of"),
        (["-o", "{tmp}/sub/x.json", "AUDIO=missing.wav"], "audio file not found"),
    ],
)
def test_bad_input_one_line_exit_2_no_output(tmp_path, speech_wav, portrait, case, expect):
    args = [a.format(tmp=tmp_path, portrait=portrait) for a in case]
    audio = str(speech_wav)
    if args[-1].startswith("AUDIO="):
        audio = str(tmp_path / args.pop()[6:])
    r = run_cli("motion", audio, *args)
    assert r.returncode == 2 and expect in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_failed_run_keeps_the_existing_file(tmp_path, speech_wav):
    out = tmp_path / "x.glb"
    out.write_bytes(b"before")
    no_face = tmp_path / "grey.png"
    from PIL import Image

    Image.new("RGB", (200, 200), (128, 128, 128)).save(no_face)
    r = run_cli("motion", str(speech_wav), "--format", "gltf", "--portrait", str(no_face), "-o", str(out))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert out.read_bytes() == b"before" and sorted(p.name for p in tmp_path.iterdir()) == [
        "grey.png",
        "x.glb",
    ]


# -- live ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("video", [True, False])
def test_the_websocket_sends_blendshape_frames(speech_wav, video):
    """A start with "motion": "arkit" gets a motion message per frame (beside its JPEG, or instead of it)."""
    testclient = pytest.importorskip("starlette.testclient", reason="needs requirements-dev.lock")
    from talkface.audio.load import load_audio
    from talkface.config import ServerSettings
    from talkface.stream.server import FRAME_HEADER, create_app

    pcm = load_audio(speech_wav).samples[: 16000 * 2]
    start = {"type": "start", "portrait": "bundled", "sample_rate": 16000, "format": "f32"}
    start.update({"options": {"size": 128}, "motion": "arkit", "video": video})
    with testclient.TestClient(create_app(ServerSettings(max_sessions=1))) as client:
        with client.websocket_connect("/ws") as ws:
            ws.send_text(json.dumps(start))
            ready = json.loads(ws.receive_text())
            assert ready["type"] == "ready" and ready["blendshapes"] == list(ARKIT_NAMES)
            for i in range(0, len(pcm), 3200):
                ws.send_bytes(pcm[i : i + 3200].astype("<f4").tobytes())
            ws.send_text(json.dumps({"type": "flush"}))
            motions, jpegs = [], []
            while True:
                message = ws.receive()
                if message.get("bytes") is not None:
                    jpegs.append(FRAME_HEADER.unpack_from(message["bytes"]))
                    continue
                doc = json.loads(message["text"])
                if doc["type"] == "flushed":
                    break
                assert doc["type"] == "motion", doc
                motions.append(doc)
    assert len(motions) == 50 and [m["index"] for m in motions] == list(range(50))
    assert len(jpegs) == (50 if video else 0)
    w = np.array([m["weights"] for m in motions])
    assert w.shape == (50, 52) and w.min() >= 0 and w.max() <= 1 and w[:, ARKIT["jawOpen"]].max() > 0.1
    assert all(len(m["head"]) == 3 and len(m["eyes"]) == 2 for m in motions)
    assert motions[10]["timestamp"] == pytest.approx(0.4)


@pytest.mark.parametrize(
    "extra,text",
    [({"motion": "visemes"}, "motion must be one of arkit"), ({"video": False}, '"video": false needs')],
)
def test_bad_motion_requests_are_refused(extra, text):
    from talkface.export.live import parse_request

    with pytest.raises(ValueError, match=re.escape(text)):
        parse_request(extra)


def test_the_3d_page_drives_the_glb_head_live(speech_wav, tmp_path):
    """static/avatar3d.html in headless Chromium (WebGL by SwiftShader): the head loads from /avatar/head.glb,
    a voice file streams over the WebSocket, and motion frames move its morph targets in time."""
    pytest.importorskip("playwright.sync_api", reason="playwright is in requirements-dev.lock")
    from test_browser import find_chromium

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (make test installs it)")
    import threading

    import cv2
    import uvicorn
    from playwright.sync_api import sync_playwright

    from talkface.stream.server import create_app

    config = uvicorn.Config(create_app(), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    args = ["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--use-angle=swiftshader"]
    args += ["--enable-unsafe-swiftshader", "--disable-background-networking", "--no-first-run"]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=args)
            try:
                page = browser.new_page()
                errors = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"http://127.0.0.1:{port}/static/avatar3d.html")
                page.wait_for_function("() => window.avatar3d.status === 'ready'", timeout=60_000)
                page.set_input_files("#audio-file", str(speech_wav))
                page.wait_for_function("() => window.avatar3d.status === 'done'", timeout=60_000)
                page.wait_for_timeout(1500)  # the last frames are shown when their audio plays
                stats = page.evaluate("() => window.avatar3d")
                shot = tmp_path / "head.png"
                page.locator("#head").screenshot(path=str(shot))
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
    assert not errors, errors
    assert stats["received"] >= SPEECH_S * 30 - 1 and stats["maxJawOpen"] > 0.1, stats
    assert stats["applied"] >= 0.3 * stats["received"], stats  # drawn at the display's rate, in time
    image = cv2.imread(str(shot))
    background = np.array([0x2A, 0x24, 0x20])  # BGR of the page's scene background
    head = (np.abs(image.astype(int) - background).sum(2) > 30).mean()
    assert 0.1 < head < 0.8, head  # the head fills a good part of the canvas


def test_the_blendshape_head_moves_as_the_rendered_face_is_tracked(portrait):
    """Render one motion component at a time, track the frame with the face mesh, and compare with what the
    exported weights make the blendshape head do (export.verify): the jaw agrees closely, the brows of
    surprise, a blink and a smile's widening in direction and size."""
    from talkface.export.verify import verify

    results = {r.name: r for r in verify(portrait)}
    jaw = results["jaw_open 0.5"]
    assert jaw.corr > 0.9 and jaw.signals["lip gap"][1] == pytest.approx(jaw.signals["lip gap"][0], rel=0.2)
    for name, signal in (
        ("surprised 1", "brow height"),
        ("blink_left 0.8", "left lid gap"),
        ("happy 1", "mouth width"),
        ("lip_spread 0.6", "mouth width"),
    ):
        rendered, shapes = results[name].signals[signal]
        assert 0.5 < shapes / rendered < 2.0, (name, signal, rendered, shapes)
    assert all(r.corr > 0.5 for r in results.values()), {r.name: r.corr for r in results.values()}


def test_the_motion_is_animates_and_a_transcript_shapes_the_visemes(tmp_path, speech_wav, portrait):
    """The exported motion is the one `animate` renders (same generator, controls, windows); and --text (the
    words spoken) gives the visemes their phonemes: the bundled speech's "I am" closes the lips on its m."""
    from talkface.assets import asset_path
    from talkface.audio.load import AudioReader, load_audio
    from talkface.config import AnimateOptions
    from talkface.engine import Engine
    from talkface.export.job import motion_for
    from talkface.motion.contract import concat_motion

    controls = {"generator": "rules", "seed": 3, "emotion": "sad", "gaze": (5.0, -2.0)}
    exported = motion_for(load_audio(speech_wav), MotionExportOptions(format="rhubarb", **controls)).motion
    animate = AnimateOptions(size=128, **controls)
    rendered = concat_motion(list(Engine(portrait, animate).motion_windows(AudioReader(speech_wav), animate)))
    for name in ("expression", "rotation", "gaze", "emotion"):
        assert np.array_equal(getattr(exported, name), getattr(rendered, name)), name

    speech = asset_path("speech.flac")
    text = json.loads(asset_path("speech.json").read_text())["text"]
    doc = json.loads(_motion(tmp_path, speech, "visemes", ".json", "--text", text).read_text())
    w = np.array([f["weights"] for f in doc["frames"]])
    t = np.array([f["time"] for f in doc["frames"]])
    near_m = (t > 0.95) & (t < 1.2)  # the "m" of "I am" is spoken at about 1.03-1.16 s
    assert w[near_m, OCULUS_VISEMES.index("PP")].max() > 0.5


def test_silence_gives_the_rest_shape_and_sil(tmp_path):
    """A phone recogniser hears phones in silence; voice activity keeps the mouth shapes at rest there."""
    from conftest import write_audio

    silence = write_audio(tmp_path / "silence.wav", np.zeros(32000, np.float32), 16000)
    assert _motion(tmp_path, silence, "rhubarb", ".tsv").read_text() == "0.00\tX\n2.00\tX\n"
    doc = json.loads(_motion(tmp_path, silence, "visemes", ".json").read_text())
    assert all(f["weights"][0] == 1.0 for f in doc["frames"])
