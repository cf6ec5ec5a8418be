"""`talkface motion AUDIO -o OUT`: the subcommand's parser and its call (export.job.export_motion)."""

from __future__ import annotations

import argparse

from talkface.config import MOTION_FORMATS, MotionExportOptions


def add_motion_parser(sub) -> argparse.ArgumentParser:
    """Add the `motion` subcommand to an argparse subparsers object; returns its parser."""
    from talkface.cli import _add_options

    p = sub.add_parser(
        "motion",
        help="audio -> motion for game engines and 3D tools, no video: " + ", ".join(MOTION_FORMATS),
    )
    p.add_argument("audio", help="voice track (WAV, MP3, M4A, FLAC, OGG, or a video's audio); up to 30 min")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output file: .json (arkit, visemes), .csv (arkit-csv), .tsv/.json/.xml (rhubarb), .glb (gltf)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.add_argument(
        "--transcript",
        "--text",
        dest="transcript",
        metavar="TEXT_OR_FILE",
        help="what is said (English; text or a .txt file): aligned to the audio, phonemes shape the mouth",
    )
    _add_options(p, MotionExportOptions)
    p.set_defaults(func=cmd_motion)
    return p


def cmd_motion(args) -> None:
    from talkface.cli import _options
    from talkface.export.job import export_motion

    options = _options(args, MotionExportOptions)
    transcript = None
    if args.transcript is not None:
        from talkface.audio.align import read_transcript

        transcript = read_transcript(args.transcript)
    path = export_motion(args.audio, args.output, options, transcript=transcript)
    if not args.quiet:
        print(f"wrote {path}")
