"""C2PA Content Credentials: every MP4 talkface writes carries a signed manifest that names talkface,
trainedAlgorithmicMedia and its inputs by hash; `verify` tells a valid, a tampered and an absent manifest
apart from the watermark, which survives re-encoding when the manifest does not."""

import argparse
import hashlib
import json
import stat
from fractions import Fraction

import av
import numpy as np
import pytest

from talkface.cli import main
from talkface.errors import TalkfaceError
from talkface.video import provenance
from talkface.video.encode import Mp4Writer
from talkface.video.verify_cli import cmd_verify


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _verify(path, capsys):
    code = cmd_verify(argparse.Namespace(video=str(path), frames=40, json=True))
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(autouse=True)
def config_home(tmp_path_factory, monkeypatch):
    """The local certificate in a config dir of the tests' own, one for the module; no user credentials."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.getbasetemp() / "config"))
    monkeypatch.delenv(provenance.CERT_ENV, raising=False)
    monkeypatch.delenv(provenance.KEY_ENV, raising=False)


@pytest.fixture(scope="module")
def talking(tmp_path_factory, portrait, speech_wav):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.getbasetemp() / "config"))
        mp.delenv(provenance.CERT_ENV, raising=False)
        mp.delenv(provenance.KEY_ENV, raising=False)
        out = tmp_path_factory.mktemp("c2pa") / "talking.mp4"
        assert main(["animate", str(portrait), str(speech_wav), "-o", str(out), "--size", "256", "-q"]) == 0
    return out


def _plain_mp4(path, ingredients=None, frames=10):
    rng = np.random.default_rng(0)
    with Mp4Writer(path, (64, 64), 25.0, ingredients=ingredients) as w:
        for _ in range(frames):
            w.write(rng.integers(0, 255, (64, 64, 3), np.uint8))
    return path


def test_written_mp4_has_a_valid_manifest_naming_talkface_and_its_inputs(talking, portrait, speech_wav):
    m = provenance.check_manifest(talking)
    assert m.state == "valid" and m.trusted and not m.problems
    assert m.generator.startswith("talkface ")
    assert m.digital_source_type == "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    assert {(i.title, i.sha256) for i in m.ingredients} == {
        (portrait.name, _sha256(portrait)),
        (speech_wav.name, _sha256(speech_wav)),
    }
    key = provenance.config_dir() / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert [p.name for p in talking.parent.iterdir()] == ["talking.mp4"]  # no temporary left behind


def test_verify_reports_watermark_and_manifest_separately(talking, capsys):
    assert main(["verify", str(talking)]) == 0
    text = capsys.readouterr().out
    assert "talkface watermark found" in text and "C2PA manifest: valid" in text
    code, d = _verify(talking, capsys)
    assert code == 0 and d["found"] and d["c2pa"]["state"] == "valid" and len(d["c2pa"]["ingredients"]) == 2


def test_a_flipped_byte_in_the_video_data_is_tampered(talking, tmp_path, capsys):
    data = bytearray(talking.read_bytes())
    i = data.index(b"mdat") + 1000
    data[i] ^= 0xFF
    bad = tmp_path / "flipped.mp4"
    bad.write_bytes(bytes(data))
    m = provenance.check_manifest(bad)
    assert m.state == "tampered" and any("mismatch" in p for p in m.problems)
    _, d = _verify(bad, capsys)
    assert d["c2pa"]["state"] == "tampered"
    assert main(["verify", str(bad)]) in (0, 1) and "C2PA manifest: TAMPERED" in capsys.readouterr().out


def test_a_reencoded_copy_keeps_the_watermark_but_loses_the_manifest(talking, tmp_path, capsys):
    copy = tmp_path / "reencoded.mp4"
    with av.open(str(talking)) as src, av.open(str(copy), "w") as out:
        v = src.streams.video[0]
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = v.width, v.height, "yuv420p"
        s.options = {"crf": "20", "preset": "veryfast"}
        for i, f in enumerate(src.decode(v)):
            frame = av.VideoFrame.from_ndarray(f.to_ndarray(format="rgb24"), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    code, d = _verify(copy, capsys)
    assert code == 0 and d["found"] and d["c2pa"]["state"] == "absent"
    main(["verify", str(copy)])
    assert "C2PA manifest: absent" in capsys.readouterr().out


def test_user_credentials_sign_and_a_bad_key_leaves_no_file(tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    provenance._make_local(mine)  # stands for a certificate the user got elsewhere
    monkeypatch.setenv(provenance.CERT_ENV, str(mine / "cert.pem"))
    monkeypatch.setenv(provenance.KEY_ENV, str(mine / "key.pem"))
    assert not provenance.credentials().local
    ing = [provenance.Ingredient("in.png", "image/png", "00" * 32)]
    m = provenance.check_manifest(_plain_mp4(tmp_path / "signed.mp4", ing))
    assert m.state == "valid" and m.signer.startswith("talkface local signer") and m.trusted

    (tmp_path / "junk.pem").write_text("not a key")
    monkeypatch.setenv(provenance.KEY_ENV, str(tmp_path / "junk.pem"))
    out = tmp_path / "atomic" / "never.mp4"
    with pytest.raises(TalkfaceError, match="PEM private key"):
        _plain_mp4(out, ing)
    assert list(out.parent.iterdir()) == []  # neither the video nor a temporary

    monkeypatch.delenv(provenance.CERT_ENV)
    with pytest.raises(TalkfaceError, match="both"):
        provenance.credentials()


def test_a_video_written_without_ingredients_has_no_manifest(tmp_path):
    assert provenance.check_manifest(_plain_mp4(tmp_path / "plain.mp4")).state == "absent"


def test_formats_c2pa_cannot_read_and_damaged_files_without_a_manifest_are_absent(tmp_path):
    webm = tmp_path / "clip.webm"
    with av.open(str(webm), "w") as out:
        s = out.add_stream("libvpx", rate=25)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        for p in [*s.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8))), *s.encode(None)]:
            out.mux(p)
    assert provenance.check_manifest(webm).state == "absent"
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"nope" * 100)
    assert provenance.check_manifest(junk).state == "absent"
