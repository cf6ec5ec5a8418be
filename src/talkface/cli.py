"""Command line: argument parsing -> API calls. Options come from the dataclasses in config.py."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys

from talkface.config import AnimateOptions
from talkface.errors import TalkfaceError

log = logging.getLogger("talkface")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse's default prints the whole usage)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_options(parser: argparse.ArgumentParser, cls) -> None:
    """One flag per dataclass field, default None so that unset flags keep the dataclass default."""
    for f in dataclasses.fields(cls):
        flag = f"--{f.name.replace('_', '-')}"
        if isinstance(f.default, bool):
            parser.add_argument(flag, action="store_true", default=None, help=f.metadata["help"])
            continue
        lo_hi = f.metadata.get("check")
        rng = f" ({lo_hi[0]:g}-{lo_hi[1]:g})" if lo_hi else ""
        parser.add_argument(
            flag,
            type=f.metadata.get("parse") or type(f.default),
            default=None,
            metavar=f.name.upper(),
            help=f"{f.metadata['help']}{rng}; default {f.default}",
        )


def _options(args, cls):
    values = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name) is not None
    }
    return cls(**values)


def _progress_bar(enabled: bool):
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(
                total=total, unit="frame", desc="rendering", disable=None, leave=False, file=sys.stderr
            )
        bar.update(done - bar.n)

    def close():
        if bar is not None:
            bar.close()

    return update, close


def _run_with_progress(job, quiet: bool, *args, **kwargs) -> None:
    """Run a pipeline function job(*args, **kwargs, progress=...) with a progress bar on a terminal."""
    update, close = _progress_bar(not quiet)
    try:
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

    options = _options(args, AnimateOptions)
    _run_with_progress(drive, args.quiet, args.portrait, args.driving_video, args.output, options)


def cmd_say(args) -> None:
    from talkface.pipeline import say

    options = _options(args, AnimateOptions)
    _run_with_progress(say, args.quiet, args.portrait, args.text, args.output, args.voice, options)


def cmd_bench(args) -> None:
    from talkface.eval.bench import run_bench

    result = run_bench(seconds=args.seconds, size=args.size)
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
    from talkface.stream.server import ServerSettings, serve

    settings = ServerSettings()
    if args.max_sessions is not None:
        settings = ServerSettings(max_sessions=args.max_sessions)
    serve(args.host, args.port, settings)


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
    p.add_argument("--voice", default="en-us", help="espeak-ng voice or language (de, fr, es, ja, cmn, ...)")
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
    _add_options(p, AnimateOptions)
    p.set_defaults(func=cmd_drive)

    p = sub.add_parser("demo", help="render the bundled sample to out/demo.mp4")
    p.add_argument("-o", "--output", default="out/demo.mp4", help="output .mp4 (default out/demo.mp4)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_options(p, AnimateOptions)
    p.set_defaults(func=cmd_demo)

    from talkface.eval.report import add_eval_parser

    add_eval_parser(sub)

    p = sub.add_parser("bench", help="time each stage at 512x512 (after a warm-up)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the benchmark audio (default 10)")
    p.add_argument("--size", type=int, default=512, help="frame size (default 512)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("serve", help="live avatar server: a web page that talks as you speak")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--max-sessions", type=int, help="live sessions at once (default: what two cores hold in real time)"
    )
    p.set_defaults(func=cmd_serve)
    from talkface.video.verify_cli import add_verify_parser

    add_verify_parser(sub)
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
    the real one. TALKFACE_NATIVE_LOGS=1 keeps the native logs."""
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
