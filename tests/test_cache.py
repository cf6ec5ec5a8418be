"""The portrait's analysis cache (talkface.face.cache): a rig from the cache is the rig built afresh, to the
bit; a bad entry is ignored and written anew; the cache keeps to its size; TALKFACE_NO_CACHE turns it off; a
job whose portrait is cached never imports mediapipe; a live session's engine does not cache."""

import logging
import os

import numpy as np
import pytest
from test_startup import modules_a_job_imports

from talkface.face import cache
from talkface.face.image import load_image
from talkface.face.landmarks import Found
from talkface.face.rig import FaceRig, build_rig


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TALKFACE_NO_CACHE", raising=False)
    return tmp_path / "cache" / "talkface" / "portraits"


def assert_same_rig(a: FaceRig, b: FaceRig) -> None:
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.person, b.person)
    np.testing.assert_array_equal(a.framing.matrix, b.framing.matrix)
    assert (a.size, a.framing.source_shape) == (b.size, b.framing.source_shape)
    assert a.points.dtype == b.points.dtype and a.person.dtype == b.person.dtype


def test_a_rig_from_the_cache_is_the_rig_built_afresh(portrait, cache_home):
    image = load_image(portrait)
    fresh = build_rig(image, 256, head_distance=1.2)
    written = cache.portrait_rig(image, 256, head_distance=1.2)
    assert len(list(cache_home.glob("*.npz"))) == 1
    read = cache.portrait_rig(image, 256, head_distance=1.2)
    assert_same_rig(written, fresh)
    assert_same_rig(read, fresh)
    cache.portrait_rig(image, 320, head_distance=1.2)  # another crop: another entry
    cache.portrait_rig(image[:, ::-1].copy(), 256, head_distance=1.2)  # another image: another entry
    assert len(list(cache_home.glob("*.npz"))) == 3
    assert not list(cache_home.glob("*.tmp"))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong shapes"])
def test_a_bad_entry_is_ignored_and_written_anew(portrait, cache_home, damage):
    image = load_image(portrait)
    good = cache.portrait_rig(image, 256)
    (entry,) = cache_home.glob("*.npz")
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:1000])
    elif damage == "garbage":
        entry.write_bytes(b"not an npz file")
    else:
        np.savez(entry, points=np.zeros((5, 3), np.float32), faces=1, view="as is", person=good.person)
    assert_same_rig(cache.portrait_rig(image, 256), good)
    assert cache._read(entry, 256) is not None  # rewritten whole


def test_the_least_recently_used_entries_go_beyond_the_size_limit(portrait, cache_home, monkeypatch):
    image = load_image(portrait)
    monkeypatch.setattr(cache, "MAX_BYTES", 2.5 * 256 * 256 * 4)  # two entries of a 256 crop
    first = cache.portrait_rig(image, 256)
    (a,) = cache_home.glob("*.npz")
    cache.portrait_rig(image, 256, head_distance=1.1)
    (b,) = set(cache_home.glob("*.npz")) - {a}
    for entry in (a, b):
        os.utime(entry, (1, 1))  # both long unused
    assert_same_rig(cache.portrait_rig(image, 256), first)  # a read: a is used again
    cache.portrait_rig(image, 256, head_distance=1.2)
    assert len(list(cache_home.glob("*.npz"))) == 2
    assert a.exists() and not b.exists()


def test_the_cache_can_be_turned_off(portrait, cache_home, monkeypatch):
    monkeypatch.setenv("TALKFACE_NO_CACHE", "1")
    cache.portrait_rig(load_image(portrait), 256)
    assert not cache_home.exists()


def test_an_unwritable_cache_only_costs_time(portrait, tmp_path, monkeypatch):
    (tmp_path / "file").write_bytes(b"")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))  # a file where the folder should be
    image = load_image(portrait)
    assert_same_rig(cache.portrait_rig(image, 256), build_rig(image, 256))


def test_a_rig_from_the_cache_says_what_the_analysis_said(portrait, cache_home, caplog):
    image = load_image(portrait)
    rig = cache.portrait_rig(image, 256)
    (entry,) = cache_home.glob("*.npz")
    found = cache._read(entry, 256)[0]
    cache._write(entry, Found(found.face, 2, "padded"), rig.person)  # as if the portrait showed two faces
    with caplog.at_level(logging.INFO, logger="talkface.face.landmarks"):
        cache.portrait_rig(image, 256)
    assert "2 faces in the portrait; animating the largest" in caplog.text
    assert "face found in the portrait only padded" in caplog.text


def test_only_the_offline_jobs_cache_the_analysis(portrait, cache_home):
    from talkface.config import AnimateOptions
    from talkface.engine import Engine

    Engine(portrait, AnimateOptions(size=256))  # as a live session makes it: anyone's upload
    assert not cache_home.exists()
    engine = Engine(portrait, AnimateOptions(size=256), cached=True)
    assert len(list(cache_home.glob("*.npz"))) == 1
    assert_same_rig(engine.rig, build_rig(load_image(portrait), 256))


def test_a_job_with_the_portrait_cached_never_imports_mediapipe(tmp_path, portrait):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("TALKFACE_NO_CACHE", None)
    names = ("mediapipe", "scipy.spatial", "scipy.ndimage")
    assert modules_a_job_imports(tmp_path, portrait, names, env) == ["mediapipe"]  # cold: the analysis ran
    assert modules_a_job_imports(tmp_path, portrait, names, env) == []  # warm
