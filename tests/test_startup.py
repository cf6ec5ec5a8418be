"""Start-up: a job imports nothing it does not use (scipy.signal, matplotlib, the rest of scipy.spatial and
scipy.ndimage, mediapipe's other solutions), the filters that replace scipy.signal's give its results to the
bit, the command runs BLAS on one thread, and analysing the portrait beside the audio keeps the errors'
order."""

import ast
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import synth_speech, write_audio

from talkface.audio.iir import lfilter, lfilter_zi
from talkface.errors import TalkfaceError


def test_iir_matches_scipy_to_the_bit():
    from scipy.signal import lfilter as scipy_lfilter
    from scipy.signal import lfilter_zi as scipy_zi

    rng = np.random.default_rng(0)
    for trial in range(60):
        x = rng.standard_normal(int(rng.integers(1, 3000))) * 10 ** rng.uniform(-5, 2)
        if trial % 2:
            x = x.astype(np.float32)  # audio chunks are float32
        pole = np.exp(-2 * np.pi * rng.uniform(0.1, 50) / 16000)
        filters = [
            ([(1 - pole) ** 2], [1.0, -2 * pole, pole**2]),  # audio.load's DC remover
            ([1 - pole], [1.0, -pole]),  # motion.stream's smoother
            (rng.standard_normal(3), [2.0, *rng.uniform(-0.3, 0.3, 2)]),
        ]
        for b, a in filters:
            zi = lfilter_zi(b, a) * float(np.mean(x))
            np.testing.assert_array_equal(zi, scipy_zi(b, a) * float(np.mean(x)))
            y, z = lfilter(b, a, x, zi)
            want_y, want_z = scipy_lfilter(b, a, x, zi=zi)
            assert y.dtype == want_y.dtype
            np.testing.assert_array_equal(y, want_y)
            np.testing.assert_array_equal(z, want_z)


def modules_a_job_imports(tmp_path, portrait, names: tuple[str, ...], env: dict) -> list[str]:
    """Which of `names` a fresh process has imported after animating 1 s of speech (with environment env)."""
    wav = write_audio(tmp_path / "one.wav", synth_speech(1.0), 16000)
    code = (
        "import sys; from talkface.pipeline import animate; "
        f"animate({str(portrait)!r}, {str(wav)!r}, {str(tmp_path / 'one.mp4')!r}); "
        f"print(sorted(m for m in {names!r} if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return ast.literal_eval(r.stdout.strip().splitlines()[-1])


def test_a_job_imports_neither_scipy_signal_nor_matplotlib(tmp_path, portrait):
    names = ("scipy.signal", "scipy.stats", "matplotlib", "matplotlib.pyplot")
    assert modules_a_job_imports(tmp_path, portrait, names, dict(os.environ)) == []


def test_a_job_imports_neither_scipy_spatial_nor_scipy_ndimage(tmp_path, portrait):
    """The set-up uses one module of each (render.warp._delaunay, render.background.nearest_outside)."""
    names = ("scipy.spatial", "scipy.ndimage", "scipy.special")
    env = {**os.environ, "TALKFACE_NO_CACHE": "1"}
    assert modules_a_job_imports(tmp_path, portrait, names, env) == []


@pytest.mark.parametrize("asked", [None, "2"])
def test_the_command_runs_blas_on_one_thread_unless_told_otherwise(asked):
    code = (
        "import os, sys, talkface.cli; sys.argv = ['talkface', '--help']\n"
        "try:\n    talkface.cli.run()\nexcept SystemExit:\n    pass\n"
        "print(os.environ['OPENBLAS_NUM_THREADS'], 'numpy' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if asked:
        env["OPENBLAS_NUM_THREADS"] = asked
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-2:] == [asked or "1", "False"]  # set before numpy (and its OpenBLAS) loads


@pytest.mark.parametrize("asked", [None, "2"])
def test_a_session_in_a_program_runs_blas_on_one_thread_unless_told_otherwise(asked, portrait):
    """A program that imported numpy before talkface (so the command's environment variable is too late):
    the Engine limits the loaded OpenBLAS to one thread, unless the program chose a count itself."""
    code = (
        "import json, numpy, sys\n"
        "from threadpoolctl import threadpool_info\n"
        "def blas(): return [p['num_threads'] for p in threadpool_info() if 'numpy' in p['filepath']]\n"
        "before = blas()\n"
        "from talkface.stream.session import Session\n"
        "Session(sys.argv[1], size=128, generator='rules').close()\n"
        "print(json.dumps([before, blas()]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    if asked:
        env["OPENBLAS_NUM_THREADS"] = asked
    r = subprocess.run([sys.executable, "-c", code, str(portrait)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    before, after = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(before) == 1, "numpy's BLAS not found by threadpoolctl"
    assert after == (before if asked else [1])


def test_mediapipes_unused_solutions_load_on_first_use():
    code = (
        "import sys; from talkface.face.landmarks import mediapipe; mp = mediapipe(); "
        "print('mediapipe.python.solutions.pose' in sys.modules, mp.solutions.pose.Pose.__name__, "
        "mp.solutions.hands.Hands.__name__, 'mediapipe.python.solutions.pose' in sys.modules); "
        "import mediapipe.python.solutions.holistic as h; print(mp.solutions.holistic is h)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "Pose", "Hands", "True", "True"]


def test_matplotlib_still_works_after_mediapipe():
    code = (
        "from talkface.face.landmarks import mediapipe; mediapipe(); "
        "from mediapipe.python.solutions import drawing_utils; "
        "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
        "assert drawing_utils.plt.figure is plt.figure; plt.plot([1, 2]); print('ok')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_a_bad_portrait_is_reported_before_bad_audio(tmp_path):
    from talkface.pipeline import animate

    (tmp_path / "face.jpg").write_bytes(b"not an image")
    with pytest.raises(TalkfaceError, match="portrait"):
        animate(tmp_path / "face.jpg", tmp_path / "missing.wav", tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == [tmp_path / "face.jpg"]
