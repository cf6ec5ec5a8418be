"""Many animate/say jobs from one file, on every local core or as Ray tasks (`talkface batch`).

A jobs file is CSV (a header row) or JSON Lines (one object per line). Each row names a `portrait`, an
`output` .mp4, and either an `audio` file (animate; `transcript` optional) or a `text` (say; `voice`
optional), plus any animate/say option by its field name in config.AnimateOptions (`seed`, `emotion`,
`full_frame` or `full-frame`, `gaze` as "5,0", ...). Options go through the CLI's own parsing and the
dataclasses' checks, so a row accepts exactly what the command line accepts. Relative paths are taken from
the jobs file's folder.

    jobs, bad = read_jobs("jobs.csv")                  # bad rows become failed results, with one line each
    results = run_local(jobs, workers=2)               # a process pool; or run_ray(jobs, "local")

Every portrait is analysed once per batch (face mesh, rig, person mask) at each (size, head_distance) its
rows ask for, and the rig goes to every job of that portrait. Outputs are written atomically (the engine's
writer), so a file at a job's output is a finished job: a second run skips it (resume). A job's failure is
its result; it never stops the batch.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from talkface.config import DEFAULT_VOICE, AnimateOptions, BatchOptions
from talkface.errors import TalkfaceError

# Columns that are not AnimateOptions fields.
JOB_COLUMNS = ("portrait", "audio", "text", "output", "voice", "transcript")
# Ray: attempts of a task after its worker process dies (crash, OOM kill, lost node). A job that fails by
# raising is not retried: its error is the result.
RAY_MAX_RETRIES = 3
TRUE, FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class Job:
    """One row of a jobs file, checked. row: its line in the file (1-based). Exactly one of audio (animate)
    and text (say) is set; transcript goes with audio, voice with text."""

    row: int
    portrait: Path
    output: Path
    options: AnimateOptions
    audio: Path | None = None
    text: str | None = None
    voice: str = DEFAULT_VOICE
    transcript: str | None = None

    @property
    def rig_key(self) -> tuple[str, int, float]:
        """What the portrait's rig depends on: the same key, the same rig."""
        return str(self.portrait.resolve()), self.options.size, self.options.head_distance


@dataclass(frozen=True)
class JobResult:
    """What became of one row. status: "done", "skipped" (its output was already there) or "failed" (error
    says why, in one line). seconds: wall time of the job in its worker. worker: the process that ran it
    (pid), and that process's peak resident memory in MB when the job ended."""

    row: int
    output: str
    status: str
    error: str | None = None
    seconds: float = 0.0
    worker: int | None = None
    peak_rss_mb: float | None = None


# -- reading the jobs file --------------------------------------------------------------------------------


def read_jobs(path: str | Path) -> tuple[list[Job], list[JobResult]]:
    """The jobs of a .csv or .jsonl (.ndjson) file, and a failed JobResult for each bad row (unknown option,
    value out of range, missing column, an output another row also writes, ...). Raises TalkfaceError if the
    file itself cannot be read."""
    path = Path(path)
    rows = _rows(path)
    jobs: list[Job] = []
    bad: list[JobResult] = []
    outputs: dict[Path, int] = {}
    for line, row in rows:
        try:
            if isinstance(row, str):  # a line that did not parse
                raise TalkfaceError(row)
            job = job_from_row(row, line, path.parent)
            if job.output in outputs:
                raise TalkfaceError(f"output {job.output} is also row {outputs[job.output]}'s")
        except TalkfaceError as e:
            output = row.get("output") if isinstance(row, dict) else None
            bad.append(JobResult(line, str(output or ""), "failed", str(e)))
            continue
        outputs[job.output] = line
        jobs.append(job)
    return jobs, bad


def _rows(path: Path) -> list[tuple[int, dict | str]]:
    """(line, row) of a jobs file: a dict of the non-empty fields, or the text of the error for a line that
    does not parse."""
    kind = path.suffix.lower()
    if kind not in (".csv", ".jsonl", ".ndjson"):
        raise TalkfaceError(f"jobs file must be .csv or .jsonl, got {path.name}")
    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise TalkfaceError(f"cannot read jobs file {path}: {getattr(e, 'strerror', None) or e}") from None
    rows: list[tuple[int, dict | str]] = []
    if kind == ".csv":
        reader = csv.DictReader(text.splitlines(keepends=True))
        if not reader.fieldnames:
            raise TalkfaceError(f"jobs file {path} is empty")
        for row in reader:
            values = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
            extra = row.get(None)
            if extra:
                rows.append((reader.line_num, f"{len(extra)} more cells than the header has columns"))
            elif any(values.values()):
                rows.append((reader.line_num, {k: v for k, v in values.items() if v}))
        return rows
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as e:
            rows.append((line, f"not a JSON object: {e.msg} at column {e.colno}"))
            continue
        if not isinstance(row, dict):
            rows.append((line, f"not a JSON object but a {type(row).__name__}"))
            continue
        rows.append((line, {k: v for k, v in row.items() if v is not None and v != ""}))
    return rows


def job_from_row(row: dict, line: int, base: Path) -> Job:
    """One row (column -> value; CSV's values are text, JSON's may be numbers, booleans or a [yaw, pitch]
    list) -> Job. Options are parsed as the CLI parses its flags (cli._add_options' types, cli._options)
    and checked by AnimateOptions. Raises TalkfaceError naming the problem in one line."""
    from talkface.cli import _options, _with_message
    from talkface.outputs import check_output

    row = {str(k).strip().replace("-", "_"): v for k, v in row.items()}
    fields = {f.name: f for f in dataclasses.fields(AnimateOptions)}
    unknown = [k for k in row if k not in fields and k not in JOB_COLUMNS]
    if unknown:
        raise TalkfaceError(f"unknown column {unknown[0]!r} (not a job column nor an animate option)")
    for column in ("portrait", "output"):
        if not isinstance(row.get(column), str):
            raise TalkfaceError(f"no {column}" if column not in row else f"{column} must be text")
    audio, text = row.get("audio"), row.get("text")
    if (audio is None) == (text is None):
        raise TalkfaceError(
            "give either audio (animate) or text (say), not " + ("both" if audio else "neither")
        )
    if audio is not None and "voice" in row:
        raise TalkfaceError("voice goes with text (say), not with audio")
    if text is not None and "transcript" in row:
        raise TalkfaceError("transcript goes with audio (animate); text is its own transcript")

    values = {}
    for name, value in row.items():
        if name not in fields:
            continue
        f, flag = fields[name], f"--{name.replace('_', '-')}"
        if isinstance(f.default, bool):
            text_value = str(value).strip().lower()
            if text_value not in TRUE + FALSE:
                raise TalkfaceError(f"{flag} {value!r}: expected true or false")
            values[name] = text_value in TRUE
            continue
        if isinstance(value, list):  # JSON's [yaw, pitch] is the CLI's "yaw,pitch"
            value = ",".join(map(str, value))
        elif isinstance(value, bool):  # JSON true where a number or a name is wanted
            raise TalkfaceError(f"{flag} {value!r}: expected {type(f.default).__name__}")
        parse = _with_message(f.metadata.get("parse")) or type(f.default)
        try:
            values[name] = parse(str(value))
        except ValueError:  # int("x"), float("x")
            raise TalkfaceError(f"{flag} {value!r}: expected {type(f.default).__name__}") from None
        except Exception as e:  # argparse.ArgumentTypeError from a field's own parser: its message
            raise TalkfaceError(f"{flag} {value!r}: {e}") from None
    options = _options(SimpleNamespace(**values), AnimateOptions)  # checks ranges and choices

    def place(p: str) -> Path:
        return Path(p) if Path(p).is_absolute() else base / p

    # Missing inputs fail here, before any worker starts (the pipeline's own words).
    portrait = place(row["portrait"])
    if not portrait.exists():
        raise TalkfaceError(f"portrait file not found: {row['portrait']}")
    if audio is not None and not place(str(audio)).exists():
        raise TalkfaceError(f"audio file not found: {audio}")
    return Job(
        row=line,
        portrait=portrait,
        output=check_output(place(row["output"])),
        options=options,
        audio=place(str(audio)) if audio is not None else None,
        text=str(text) if text is not None else None,
        voice=str(row.get("voice", DEFAULT_VOICE)),
        transcript=str(row["transcript"]) if "transcript" in row else None,
    )


# -- the work, in a worker process ------------------------------------------------------------------------


def analyse(key: tuple[str, int, float]):
    """The rig of a portrait at (path, size, head_distance), or the one-line error that prevents it (a
    result, not an exception: a bad portrait is not worth a retry)."""
    from talkface.face.image import load_image
    from talkface.face.rig import build_rig

    portrait, size, head_distance = key
    try:
        return build_rig(load_image(portrait), size, head_distance=head_distance)
    except TalkfaceError as e:
        return str(e)
    except Exception as e:  # noqa: BLE001  a bug: one line in the summary, not a traceback
        return f"internal error: {type(e).__name__}: {e}"


def run_job(job: Job, rig=None) -> JobResult:
    """Render one job (skipped if its output exists). rig: the portrait's FaceRig from analyse(), or the
    error text that analysis gave (the job then fails with it), or None to analyse here."""
    from talkface.pipeline import animate, say

    t = time.perf_counter()

    def result(status: str, error: str | None = None) -> JobResult:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        seconds = time.perf_counter() - t
        return JobResult(job.row, str(job.output), status, error, seconds, os.getpid(), peak)

    if job.output.exists():
        return result("skipped")
    if isinstance(rig, str):
        return result("failed", rig)
    try:
        if job.audio is not None:
            transcript = None
            if job.transcript is not None:
                from talkface.audio.align import read_transcript

                transcript = read_transcript(job.transcript)
            animate(job.portrait, job.audio, job.output, job.options, transcript=transcript, rig=rig)
        else:
            say(job.portrait, job.text, job.output, job.voice, job.options, rig=rig)
    except TalkfaceError as e:
        return result("failed", str(e))
    except Exception as e:  # noqa: BLE001  a bug: one line in the summary, not a traceback
        return result("failed", f"internal error: {type(e).__name__}: {e}")
    return result("done")


def _pending(jobs: Iterable[Job]) -> tuple[list[Job], list[JobResult]]:
    """Jobs still to do, and a skipped result for each whose output already exists."""
    todo, skipped = [], []
    for job in jobs:
        if job.output.exists():
            skipped.append(JobResult(job.row, str(job.output), "skipped"))
        else:
            todo.append(job)
    return todo, skipped


Done = Callable[[JobResult], None]  # called once per finished job, in the order they finish


# -- a local process pool ---------------------------------------------------------------------------------


def _worker_init() -> None:
    # The pool's workers are quiet: the batch reports their errors in its summary.
    logging.getLogger("talkface").setLevel(logging.WARNING)


def run_local(jobs: list[Job], workers: int | None = None, done: Done | None = None) -> list[JobResult]:
    """Run `jobs` on a pool of `workers` processes (default: one per core), each portrait analysed once
    (its rig then goes to each of its jobs). Returns one result per job, in the order they finished;
    done(result) is called as each finishes (the progress bar)."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    todo, results = _pending(jobs)
    for r in results:
        _report(done, r)
    if not todo:
        return results
    by_key: dict[tuple, list[Job]] = {}
    for job in todo:
        by_key.setdefault(job.rig_key, []).append(job)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
    # spawn: the workers start clean (no copy of a parent's threads or native library state).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init) as pool:
        running = {pool.submit(analyse, key): key for key in by_key}
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                what = running.pop(future)
                if isinstance(what, tuple):  # a portrait analysed: its jobs can start
                    rig = _outcome(future)
                    for job in by_key[what]:
                        try:
                            running[pool.submit(run_job, job, rig)] = job
                        except BrokenProcessPool:  # a worker died (killed, out of memory)
                            r = JobResult(job.row, str(job.output), "failed", "worker failed: the pool broke")
                            results.append(r)
                            _report(done, r)
                    continue
                outcome = _outcome(future)
                r = (
                    outcome
                    if isinstance(outcome, JobResult)
                    else JobResult(what.row, str(what.output), "failed", outcome)
                )
                results.append(r)
                _report(done, r)
    return results


def _outcome(future):
    """A future's result, or the one-line text of what went wrong (a worker that died, say)."""
    try:
        return future.result()
    except Exception as e:  # noqa: BLE001
        return f"worker failed: {type(e).__name__}: {e}"


def _report(done: Done | None, result: JobResult) -> None:
    if done is not None:
        done(result)


# -- Ray --------------------------------------------------------------------------------------------------


RAY_CONNECT_TIMEOUT_S = 5.0  # an explicit cluster address must accept a connection within this


def _check_reachable(address: str) -> None:
    """Raise TalkfaceError in one line, within RAY_CONNECT_TIMEOUT_S, when nothing listens at a Ray
    address (host:port or ray://host:port): Ray itself retries for minutes before it gives up."""
    import socket

    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise TalkfaceError(f"--ray {address!r}: give local, auto, host:port or ray://host:port")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=RAY_CONNECT_TIMEOUT_S).close()
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise TalkfaceError(f"cannot reach Ray at {address!r}: {reason}") from None


def run_ray(
    jobs: list[Job], address: str = "auto", workers: int | None = None, done: Done | None = None
) -> list[JobResult]:
    """Run `jobs` as Ray tasks: address "local" starts a Ray instance on this machine (with `workers` CPUs,
    default all), "auto" joins the cluster this machine belongs to, anything else is a cluster address
    (ray://host:10001 or host:6379). Each portrait is analysed by one task and its rig shared with its jobs
    through Ray's object store; a task whose worker dies is retried RAY_MAX_RETRIES times. The files named
    in the jobs must be readable and writable at the same paths on every node (a shared folder)."""
    try:
        import ray
    except ImportError:
        raise TalkfaceError(
            "--ray needs Ray: pip install --no-deps -r requirements-ray.lock (the pinned extra)"
        ) from None
    todo, results = _pending(jobs)
    for r in results:
        _report(done, r)
    if not todo:
        return results
    # Ray's driver prints what its workers and raylets report (a worker that died, say) on standard
    # output, which belongs to --json: it goes to standard error with the batch's other messages.
    with contextlib.redirect_stdout(sys.stderr):
        started = not ray.is_initialized()
        if started:
            kwargs = {"num_cpus": workers} if address == "local" else {"address": address}
            if address not in ("local", "auto"):
                _check_reachable(address)
            try:
                ray.init(
                    **kwargs,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.ERROR,  # not its notices: the batch reports what matters
                )
            except Exception as e:  # noqa: BLE001  a cluster not there, a bad address: one line
                raise TalkfaceError(f"cannot start or join Ray at {address!r}: {e}") from None
        try:
            analyse_task = ray.remote(num_cpus=1, max_retries=RAY_MAX_RETRIES)(analyse)
            job_task = ray.remote(num_cpus=1, max_retries=RAY_MAX_RETRIES, retry_exceptions=False)(run_job)
            rigs = {}
            running = {}
            for job in todo:
                if job.rig_key not in rigs:
                    rigs[job.rig_key] = analyse_task.remote(job.rig_key)
                running[job_task.remote(job, rigs[job.rig_key])] = job
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    job = running.pop(ref)
                    try:
                        r = ray.get(ref)
                    except Exception as e:  # noqa: BLE001  retries used up: the worker kept dying
                        r = JobResult(
                            job.row, str(job.output), "failed", f"worker failed: {type(e).__name__}"
                        )
                    results.append(r)
                    _report(done, r)
        finally:
            if started:
                ray.shutdown()
    return results


# -- summary ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """A batch's outcome. seconds: wall time of the batch; workers: peak resident MB of each worker
    process (pid -> MB)."""

    results: tuple[JobResult, ...]
    seconds: float
    workers: dict[int, float]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def clips_per_minute(self) -> float:
        return 60 * self.count("done") / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> Iterator[str]:
        """The summary as the CLI prints it: one line of counts, then one line per failed row."""
        peak = f"; peak memory per worker {max(self.workers.values()):.0f} MB" if self.workers else ""
        yield (
            f"{self.count('done')} done, {self.count('skipped')} skipped (already there), "
            f"{self.count('failed')} failed, in {self.seconds:.1f} s ({self.clips_per_minute:.1f} clips/min"
            f" with {len(self.workers)} worker{'s' * (len(self.workers) != 1)}){peak}"
        )
        for r in sorted(self.results, key=lambda r: r.row):
            if r.status == "failed":
                yield f"  row {r.row}{f' ({r.output})' if r.output else ''}: {r.error}"

    def as_dict(self) -> dict:
        return {
            "done": self.count("done"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "seconds": self.seconds,
            "clips_per_minute": self.clips_per_minute,
            "worker_peak_rss_mb": sorted(self.workers.values()),
            "results": [dataclasses.asdict(r) for r in sorted(self.results, key=lambda r: r.row)],
        }


def run_batch(
    path: str | Path,
    workers: int | None = None,
    ray_address: str | None = None,
    done: Done | None = None,
    total: Callable[[int], None] | None = None,
) -> Summary:
    """Read the jobs file and run every good row, locally or on Ray (ray_address). total(n) is called
    with the number of rows before any runs (the progress bar's length)."""
    t = time.perf_counter()
    jobs, bad = read_jobs(path)
    if total is not None:
        total(len(jobs) + len(bad))
    for r in bad:
        _report(done, r)
    if ray_address:
        results = run_ray(jobs, ray_address, workers, done)
    else:
        results = run_local(jobs, workers, done)
    results = bad + results
    peaks: dict[int, float] = {}
    for r in results:
        if r.worker is not None and r.peak_rss_mb is not None:
            peaks[r.worker] = max(peaks.get(r.worker, 0.0), r.peak_rss_mb)
    return Summary(tuple(results), time.perf_counter() - t, peaks)


# -- command line -----------------------------------------------------------------------------------------


def add_batch_parser(sub) -> None:
    """`talkface batch JOBS [--workers N] [--ray ADDRESS] [-q] [--json]` on the CLI's subparsers; the
    flags of config.BatchOptions are generated as every command's are."""
    from talkface.cli import _add_options

    p = sub.add_parser(
        "batch", help="many animate/say jobs from a CSV or JSON Lines file, on every core or Ray"
    )
    p.add_argument(
        "jobs",
        help="a .csv (header row) or .jsonl file: per row portrait, output, audio or text, and any animate "
        "option by name (seed, emotion, full_frame, ...); relative paths from the file's folder",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar; print only failures")
    p.add_argument("--json", action="store_true", help="print the summary and every job's result as JSON")
    _add_options(p, BatchOptions)
    p.set_defaults(func=cmd_batch)


def cmd_batch(args) -> int:
    """Run a batch with a progress bar of clips; the summary on stderr; exit 1 if any job failed."""
    from talkface.cli import _options

    options = _options(args, BatchOptions)
    bar = None

    def total(n: int) -> None:
        nonlocal bar
        if not args.quiet:
            from tqdm import tqdm

            bar = tqdm(total=n, unit="clip", desc="batch", disable=None, leave=False, file=sys.stderr)

    def done(result: JobResult) -> None:
        if bar is not None:
            bar.update(1)

    try:
        summary = run_batch(args.jobs, options.workers, options.ray, done, total)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(summary.as_dict()))
    for i, line in enumerate(summary.lines()):
        if i == 0 and args.quiet and not summary.count("failed"):
            continue
        print(f"talkface batch: {line}" if i == 0 else line, file=sys.stderr)
    return 1 if summary.count("failed") else 0
