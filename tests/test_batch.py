"""talkface batch: jobs files parsed as the CLI parses flags, bad rows reported in one line each, a local
process pool, resume, and the same jobs as tasks on a local Ray instance."""

import json

import av
import numpy as np
import pytest
from conftest import synth_speech, write_audio

from talkface.batch import read_jobs, run_batch
from talkface.cli import main
from talkface.config import AnimateOptions, parse_emotion


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, portrait):
    """A folder with a portrait and a 1-s clip, named as the jobs files name them (relative paths)."""
    folder = tmp_path_factory.mktemp("batch")
    (folder / "face.jpg").write_bytes(portrait.read_bytes())
    write_audio(folder / "one.wav", synth_speech(1.0), 16000)
    return folder


def frames(path):
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_rows_take_the_cli_options_and_bad_rows_say_why_in_one_line(inputs):
    rows = [
        {"portrait": "face.jpg", "audio": "one.wav", "output": "a.mp4", "seed": 3, "gaze": [5, -2]},
        {
            "portrait": "face.jpg",
            "text": "Hi.",
            "output": "b.mp4",
            "full-frame": "yes",
            "emotion": "happy:0.8",
        },
        {"portrait": "face.jpg", "audio": "one.wav", "output": "c.mp4", "seed": "x"},
        {"portrait": "face.jpg", "audio": "one.wav", "output": "d.mp4", "emotion": "furious"},
        {"portrait": "face.jpg", "audio": "one.wav", "output": "e.mp4", "size": 4096},
        {"portrait": "face.jpg", "audio": "one.wav", "text": "both", "output": "f.mp4"},
        {"portrait": "nobody.jpg", "audio": "one.wav", "output": "g.mp4"},
        {"portrait": "face.jpg", "audio": "one.wav", "output": "h.mp4", "colour": "blue"},
        {"portrait": "face.jpg", "audio": "one.wav", "output": "a.mp4"},
        {"portrait": "face.jpg", "audio": "one.wav", "output": "i.txt"},
    ]
    path = inputs / "parse.jsonl"
    path.write_text("\n".join(map(json.dumps, rows)) + "\n{not json\n[1, 2]\n")
    jobs, bad = read_jobs(path)
    assert [j.row for j in jobs] == [1, 2]
    a, b = jobs
    assert a.options == AnimateOptions(seed=3, gaze=(5.0, -2.0)) and a.audio == inputs / "one.wav"
    assert b.text == "Hi." and b.options.full_frame and b.options.emotion == parse_emotion("happy:0.8")
    errors = {r.row: r.error for r in bad}
    assert errors == {
        3: "--seed 'x': expected int",
        4: "--emotion 'furious' is not one of: neutral, happy, sad, angry, surprised, disgusted, fearful, "
        "contemptuous",
        5: "--size 4096 is out of range: it must be between 128 and 2048",
        6: "give either audio (animate) or text (say), not both",
        7: "portrait file not found: nobody.jpg",
        8: "unknown column 'colour' (not a job column nor an animate option)",
        9: f"output {inputs / 'a.mp4'} is also row 1's",
        10: "output must be an .mp4 file, got i.txt",
        11: "not a JSON object: Expecting property name enclosed in double quotes at column 2",
        12: "not a JSON object but a list",
    }


def test_batch_runs_the_good_rows_reports_the_bad_and_resumes(inputs, capsys):
    jobs = inputs / "jobs.csv"
    jobs.write_text(
        "portrait,audio,text,output,seed,size,generator,emotion\n"
        "face.jpg,one.wav,,out/a.mp4,1,128,rules,\n"
        "face.jpg,,Hello.,out/b.mp4,2,128,rules,sad\n"
        "face.jpg,one.wav,,out/c.mp4,1,128,rules,furious\n"
        "face.jpg,one.wav,,out/d.mp4,1,128,chaos,\n"
    )
    assert main(["batch", str(jobs), "--workers", "2", "-q"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("talkface batch: 2 done, 0 skipped (already there), 2 failed")
    assert err[1].startswith("  row 4 (") and "--emotion 'furious' is not one of" in err[1]
    assert err[2].startswith("  row 5 (") and "--generator 'chaos' is not one of" in err[2]
    assert len(err) == 3 and "Traceback" not in "".join(err)
    out = inputs / "out"
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mp4"]  # no temporary left behind
    assert frames(out / "a.mp4") == 25
    stamps = {p: p.stat().st_mtime_ns for p in out.iterdir()}

    # A second run skips what is done and redoes nothing; a missing output is made again.
    (out / "b.mp4").unlink()
    assert main(["batch", str(jobs), "--json", "-q"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert (summary["done"], summary["skipped"], summary["failed"]) == (1, 1, 2)
    assert (out / "a.mp4").stat().st_mtime_ns == stamps[out / "a.mp4"]
    assert frames(out / "b.mp4") > 0
    assert all(mb > 0 for mb in summary["worker_peak_rss_mb"])


def test_an_unreadable_jobs_file_is_one_line_exit_2(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "jobs.csv")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["batch", str(tmp_path / "jobs.xlsx")]) == 2
    assert "jobs file must be .csv or .jsonl" in capsys.readouterr().err


def test_a_given_rig_renders_the_frames_of_a_fresh_analysis(portrait, rig, speech_wav):
    """The batch hands each job its portrait's rig, analysed once: the frames are those of a job that
    analyses the portrait itself (the rig fixture is build_rig at 256)."""
    from talkface.audio.load import load_audio
    from talkface.engine import Engine
    from talkface.video.watermark import new_payload

    options = AnimateOptions(size=256, generator="rules")
    payload = new_payload()
    fresh = Engine(portrait, options, payload=payload)
    given = Engine(portrait, options, payload=payload, rig=rig)
    motion = next(fresh.motion_windows(load_audio(speech_wav), options))
    for i in (0, 20):
        np.testing.assert_array_equal(fresh.frame(motion, i), given.frame(motion, i))


def test_batch_on_a_local_ray_instance(inputs):
    pytest.importorskip("ray")
    jobs = inputs / "ray.jsonl"
    rows = [
        {
            "portrait": "face.jpg",
            "audio": "one.wav",
            "output": "ray/a.mp4",
            "size": 128,
            "generator": "rules",
        },
        {"portrait": "face.jpg", "audio": "one.wav", "output": "ray/b.mp4", "size": 128, "seed": 5},
        {"portrait": "face.jpg", "audio": "one.wav", "output": "ray/c.mp4", "gaze": "90,0"},
    ]
    jobs.write_text("\n".join(map(json.dumps, rows)))
    summary = run_batch(jobs, workers=2, ray_address="local")
    assert (summary.count("done"), summary.count("failed")) == (2, 1)
    assert [r.error for r in summary.results if r.status == "failed"] == [
        "--gaze 90.0 is out of range: it must be between -25 and 25"
    ]
    assert frames(inputs / "ray" / "a.mp4") == 25 and frames(inputs / "ray" / "b.mp4") == 25
    assert summary.workers and all(mb > 0 for mb in summary.workers.values())


def test_an_unreachable_ray_address_fails_at_once_in_one_line(inputs, capsys):
    """Ray itself retries an address nobody listens at for minutes; the batch says so within seconds."""
    pytest.importorskip("ray")
    import socket
    import time

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    jobs = inputs / "unreachable.jsonl"
    jobs.write_text(json.dumps({"portrait": "face.jpg", "audio": "one.wav", "output": "unreachable/a.mp4"}))
    t = time.monotonic()
    assert main(["batch", str(jobs), "--ray", f"ray://127.0.0.1:{port}", "-q"]) == 2
    assert time.monotonic() - t < 10
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach Ray at" in err[0]
    assert not (inputs / "unreachable" / "a.mp4").exists()
