"""The motion contract and the package's surface: generators that don't know each other, a registry that
agrees with the options, lazy imports."""

import ast
import dataclasses
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

import talkface
from talkface.config import AnimateOptions, MotionControls
from talkface.motion.contract import Generator, MotionSequence
from talkface.motion.generators import GENERATORS, generate, generator

GENERATOR_MODULES = {spec.split(":")[0] for spec in GENERATORS.values()}


def _imports(module: str) -> set[str]:
    tree = ast.parse(Path(find_spec(module).origin).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_generators_never_import_each_other():
    for module in GENERATOR_MODULES:
        others = GENERATOR_MODULES - {module}
        assert not _imports(module) & others, module


@pytest.mark.parametrize(
    "module", ["talkface.engine", "talkface.pipeline", "talkface.stream.session", "talkface.eval.bench"]
)
def test_the_engine_and_its_users_see_only_the_contract_and_the_registry(module):
    assert not _imports(module) & GENERATOR_MODULES, module


def test_the_registry_agrees_with_the_options():
    field = {f.name: f for f in dataclasses.fields(AnimateOptions)}["generator"]
    assert set(field.metadata["choices"]) == set(GENERATORS)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_every_generator_keeps_the_contract(name):
    """One motion frame per video frame, at the asked rate, with every control in its output."""
    cls: Generator = generator(name)
    assert isinstance(cls.needs_phonemes, bool)
    from conftest import synth_speech

    from talkface.audio.features import compute_features
    from talkface.audio.load import from_samples

    features = compute_features(from_samples(synth_speech(1.5), 16000))
    controls = MotionControls(seed=1, emotion="happy", emotion_strength=0.4, gaze=(4.0, -2.0))
    stream = cls(30.0, controls)
    assert stream.fps == 30.0 and stream.lookahead_s >= 0 and stream.lead_s >= 0
    m = generate(name, features, 45, 30.0, controls)
    assert isinstance(m, MotionSequence) and len(m) == 45 and m.fps == 30.0
    assert np.allclose(m.emotion[:, 0], 0.4) and np.allclose(m.emotion[:, 1:], 0)  # happy at 0.4
    if name != "loudness":  # the baseline moves nothing but the jaw
        ahead = generate(name, features, 45, 30.0, dataclasses.replace(controls, gaze=(0.0, 0.0)))
        np.testing.assert_allclose(m.gaze - ahead.gaze, np.tile([4.0, -2.0], (45, 1)), atol=1e-5)


def test_unknown_generator_is_a_clean_error():
    with pytest.raises(talkface.TalkfaceError, match="unknown generator"):
        generator("magic")


def test_public_names_load_on_first_use():
    for name in talkface.__all__:
        assert getattr(talkface, name) is not None
    with pytest.raises(AttributeError):
        talkface.no_such_thing  # noqa: B018


def test_import_and_help_load_no_numeric_library():
    """`import talkface` and `talkface --help` import neither numpy, OpenCV, PyAV, scipy nor numba (they cost
    0.5-1 s): the CLI's commands import what they need when they run."""
    code = (
        "import sys, talkface\n"
        "from talkface.cli import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = {'numpy', 'cv2', 'av', 'scipy', 'numba', 'mediapipe', 'onnxruntime'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_retrained_model_is_loaded_beside_the_shipped_one(tmp_path, portrait, speech_wav):
    """--motion-model: another model file, given by path, is used instead of the shipped one without replacing
    it; a generator without a model file refuses one; a missing file is a one-line error."""
    import shutil

    from talkface.assets import asset_path
    from talkface.cli import main
    from talkface.motion.learned import load_model

    copy = tmp_path / "retrained.onnx"
    shutil.copy(asset_path("motion_model.onnx"), copy)
    shutil.copy(asset_path("motion_model.json"), copy.with_suffix(".json"))
    shipped, other = load_model(), load_model(copy)
    assert other is not shipped and load_model(copy) is other and load_model() is shipped
    out = tmp_path / "a.mp4"
    args = ["animate", str(portrait), str(speech_wav), "-o", str(out), "--size", "128", "-q"]
    assert main([*args, "--motion-model", str(copy)]) == 0 and out.is_file()
    with pytest.raises(talkface.TalkfaceError, match="no model file"):
        generator("rules")(25.0, MotionControls(), (), copy)
    assert main([*args, "--motion-model", str(tmp_path / "missing.onnx")]) == 2
