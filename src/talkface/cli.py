"""Command line: argument parsing -> API calls. Options come from the dataclasses in config.py."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import sys

from talkface.config import (
    DEFAULT_VOICE,
    AnimateOptions,
    BenchOptions,
    DriveOptions,
    EvalOptions,
    ServerSettings,
)
from talkface.errors import TalkfaceError

log = logging.getLogger("talkface")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse's default prints the whole usage)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_options(parser: argparse.ArgumentParser, cls, flags: dict[str, str] | None = None) -> None:
    """One flag per dataclass field, default None so that unset flags keep the dataclass default. A bool's
    flag turns it on, or off (--no-NAME) if it defaults to True; a tuple of choices takes one flag per item.
    flags: field name -> flag, for a flag not spelled after its field."""
    flags = flags or {}
    for f in dataclasses.fields(cls):
        name, text, choices = f.name.replace("_", "-"), f.metadata["help"], f.metadata.get("choices")
        if isinstance(f.default, bool):
            flag = flags.get(f.name, f"--no-{name}" if f.default else f"--{name}")
            action = "store_false" if f.default else "store_true"
            text = f"do not {text}" if f.default else text  # a True field's help says what it does when on
            parser.add_argument(flag, dest=f.name, action=action, default=None, help=text)
            continue
        lo_hi = f.metadata.get("check")
        rng = f" ({_bound(lo_hi[0])}-{_bound(lo_hi[1])})" if lo_hi else ""
        default = "" if f.default is None else f"; default {_shown(f.default)}"  # None: the help says
        repeated = isinstance(f.default, tuple) and choices is not None
        parser.add_argument(
            flags.get(f.name, f"--{name}"),
            dest=f.name,
            action="append" if repeated else "store",
            type=str if repeated else _with_message(f.metadata.get("parse")) or type(f.default),
            choices=choices,
            default=None,
            metavar=None if choices else f.name.upper(),  # argparse shows the choices
            help=f"{text}{rng}{default}",
        )


def _with_message(parse):
    """A field's own parser whose ValueError text reaches the error line (argparse shows only "invalid
    parse_pair value" for a plain ValueError). Built-in types (str, float) are passed through."""
    if parse is None or isinstance(parse, type):
        return parse

    def parsed(text: str):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parsed


class _Refused(argparse.Action):
    """A flag another command takes that makes no sense here: a one-line error that says why."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} does not apply: {self.const}")


def _refuse(parser: argparse.ArgumentParser, offered, taken, why: str) -> None:
    """Flags of `offered`'s fields that `taken` lacks: a clear error, not argparse's "unrecognized"."""
    names = {f.name for f in dataclasses.fields(taken)}
    for f in dataclasses.fields(offered):
        if f.name not in names:
            flag = f"--{f.name.replace('_', '-')}"
            parser.add_argument(flag, action=_Refused, nargs="?", const=why, help=argparse.SUPPRESS)


def _shown(value) -> str:
    """A default as the help shows it: a tuple as its items."""
    return ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _bound(x: float) -> str:
    """A range's end as the help shows it: an int in full (2147483647, not 2.14748e+09)."""
    return str(x) if isinstance(x, int) else f"{x:g}"


def _options(args, cls):
    """The dataclass of the flags given: a flag unset (None) or missing keeps the dataclass default, and a
    repeated flag's items count once each, in order."""
    values = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name, None)
        if value is not None:
            values[f.name] = tuple(dict.fromkeys(value)) if isinstance(value, list) else value
    return cls(**values)


def _progress_bar(enabled: bool):
    """(frame progress callback, stage listener (talkface.stages), close): on a terminal, a bar for each
    slow stage before the first frame (percent of the audio), then one for the frames."""
    if not enabled:
        return None, None, lambda: None
    from tqdm import tqdm

    bars: dict = {"stage": None, "frames": None, "stage_name": None}  # a disabled tqdm keeps no desc

    def new_bar(**kwargs):
        return tqdm(disable=None, leave=False, file=sys.stderr, **kwargs)

    def stage(name: str, fraction: float) -> None:
        bar = bars["stage"]
        if bars["frames"] is not None:
            return
        if bar is None or bars["stage_name"] != name:
            if bar is not None:
                bar.close()
            bar = bars["stage"] = new_bar(total=100, unit="%", desc=name)
            bars["stage_name"] = name
        bar.update(round(100 * fraction) - bar.n)

    def update(done: int, total: int) -> None:
        if bars["frames"] is None:
            if bars["stage"] is not None:
                bars["stage"].close()
            bars["frames"] = new_bar(total=total, unit="frame", desc="rendering")
        bars["frames"].update(done - bars["frames"].n)

    def close():
        for bar in (bars["stage"], bars["frames"]):
            if bar is not None:
                bar.close()

    return update, stage, close


def _run_with_progress(job, quiet: bool, *args, **kwargs) -> None:
    """Run a pipeline function job(*args, **kwargs, progress=...) with progress bars on a terminal."""
    from talkface import stages

    update, stage, close = _progress_bar(not quiet)
    try:
        with stages.listening(stage) if stage else contextlib.nullcontext():
            path = job(*args, **kwargs, progress=update)
    finally:
        close()
    if not quiet:
        print(f"wrote {path}")


def cmd_animate(args) -> None:
    from talkface.pipeline import animate

    options = _options(args, AnimateOptions)
    transcript = None
    if args.transcript is not None:
        from talkface.audio.align import read_transcript

        transcript = read_transcript(args.transcript)
    _run_with_progress(
        animate, args.quiet, args.portrait, args.audio, args.output, options, transcript=transcript
    )


def cmd_demo(args) -> None:
    from talkface.assets import asset_path
    from talkface.pipeline import animate

    options = _options(args, AnimateOptions)
    portrait, speech = asset_path("portrait.jpg"), asset_path("speech.flac")
    _run_with_progress(animate, args.quiet, portrait, speech, args.output, options)


def cmd_drive(args) -> None:
    from talkface.pipeline import drive

    options = _options(args, DriveOptions)
    _run_with_progress(drive, args.quiet, args.portrait, args.driving_video, args.output, options)


def cmd_say(args) -> None:
    from talkface.pipeline import say

    options = _options(args, AnimateOptions)
    _run_with_progress(say, args.quiet, args.portrait, args.text, args.output, args.voice, options)


def cmd_eval(args) -> None:
    from pathlib import Path

    from talkface.eval.report import run_eval

    logging.getLogger("talkface.eval").setLevel(logging.INFO)  # one progress line per clip
    report = run_eval(args.data_dir, args.report, _options(args, EvalOptions))
    print(f"wrote {Path(args.report) / 'report.md'} ({report['settings']['wall_time_s']:.0f} s)")


def cmd_bench(args) -> None:
    from talkface.eval.bench import run_bench

    result = run_bench(_options(args, BenchOptions))
    if args.json:
        print(json.dumps(result))
    else:
        for stage, ms in result["stages_ms"].items():
            print(f"{stage:>10}: {ms:8.2f} ms/frame")
        print(
            f"render_fps {result['render_fps']:.1f}, realtime_factor {result['realtime_factor']:.3f}, "
            f"peak_rss_mb {result['peak_rss_mb']:.0f}"
        )
        if "stream_latency_ms" in result:
            print(
                f"live: stream_latency_ms {result['stream_latency_ms']:.0f} (median), "
                f"stream_fps {result['stream_fps']:.1f} (sustained)"
            )


def cmd_serve(args) -> None:
    from talkface.stream.server import serve

    serve(_options(args, ServerSettings))


def build_parser() -> argparse.ArgumentParser:
    from talkface import __version__

    parser = _Parser(prog="talkface", description="A still portrait + a voice track -> a talking-face video.")
    parser.add_argument("--version", action="version", version=f"talkface {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each stage")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("animate", help="portrait + audio -> MP4")
    p.add_argument("portrait", help="image with a face (JPEG, PNG, WebP, ...)")
    p.add_argument("audio", help="voice track (WAV, MP3, M4A, FLAC, OGG, or a video's audio); up to 30 min")
    p.add_argument("-o", "--output", required=True, help="output .mp4")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--transcript",
        metavar="TEXT_OR_FILE",
        help="what is said (English; text or a .txt file): aligned to the audio, phonemes shape the mouth",
    )
    _add_options(p, AnimateOptions)
    p.set_defaults(func=cmd_animate)

    p = sub.add_parser("say", help="portrait + text -> speech (espeak-ng) -> MP4")
    p.add_argument("portrait", help="image with a face")
    p.add_argument("text", help="what the face says")
    p.add_argument("-o", "--output", required=True, help="output .mp4")
    p.add_argument(
        "--voice",
        default=DEFAULT_VOICE,
        help=f"espeak-ng voice or language (de, fr, es, ja, cmn, ...); default {DEFAULT_VOICE}",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_options(p, AnimateOptions)
    p.set_defaults(func=cmd_say)

    p = sub.add_parser("drive", help="portrait + a driving video of a face -> MP4 (video-driven reenactment)")
    p.add_argument("portrait", help="image with a face")
    p.add_argument(
        "driving_video", help="video of a face: its pose, expression, blinks and gaze drive the portrait"
    )
    p.add_argument("-o", "--output", required=True, help="output .mp4")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_options(p, DriveOptions)
    _refuse(p, AnimateOptions, DriveOptions, "drive takes its motion from the driving video")
    p.set_defaults(func=cmd_drive)

    p = sub.add_parser("demo", help="render the bundled sample to out/demo.mp4")
    p.add_argument("-o", "--output", default="out/demo.mp4", help="output .mp4 (default out/demo.mp4)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_options(p, AnimateOptions)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("eval", help="measure the generators against real talking clips")
    p.add_argument("data_dir", help="folder of talking-head videos with their own audio")
    p.add_argument("--report", default="reports/eval", help="output folder (default reports/eval)")
    _add_options(p, EvalOptions, flags={"generators": "--generator", "keep_videos": "--no-videos"})
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="time each stage, of a video and of a live session (after a warm-up)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_options(p, BenchOptions)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("serve", help="live avatar server: a web page that talks as you speak")
    _add_options(p, ServerSettings)
    p.set_defaults(func=cmd_serve)
    from talkface.batch import add_batch_parser
    from talkface.video.verify_cli import add_verify_parser

    add_batch_parser(sub)
    add_verify_parser(sub)
    from talkface.export.cli import add_motion_parser

    add_motion_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="talkface: %(message)s",
        stream=sys.stderr,
    )
    try:
        code = args.func(args)
    except TalkfaceError as e:
        print(f"talkface: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("talkface: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not bad input: say so in one line unless --debug
        if args.debug:
            raise
        print(
            f"talkface: internal error: {type(e).__name__}: {e} (rerun with --debug for details)",
            file=sys.stderr,
        )
        return 1
    return code or 0


def run() -> None:
    """The `talkface` command: main() with the native libraries' own logging kept off the terminal.
    mediapipe's C++ graph (absl/glog) and TFLite write notices straight to file descriptor 2, sometimes from
    their own threads after any Python-side redirection has ended, so the CLI's one-line errors would not
    be one line. Descriptor 2 goes to /dev/null for the whole run and Python's sys.stderr to a duplicate of
    the real one. TALKFACE_NATIVE_LOGS=1 keeps the native logs.

    BLAS runs on one thread unless OPENBLAS_NUM_THREADS says otherwise (set before numpy loads): talkface's
    matrix products are small, and OpenBLAS's second thread only spins after each of them, 0.4 s of CPU in a
    job's first second taken from the thread that analyses the portrait; frames render as fast."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if not os.environ.get("TALKFACE_NATIVE_LOGS"):
        try:
            real = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
        except OSError:
            pass
        else:
            sys.stderr.flush()
            sys.stderr = os.fdopen(real, "w", buffering=1, errors="backslashreplace")
            os.dup2(devnull, 2)
            os.close(devnull)
    sys.exit(main())


if __name__ == "__main__":
    run()
