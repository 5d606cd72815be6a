"""The command line. Translates errors into messages and exit codes; the only place
that prints or reads the clock."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syndicate import __version__
from syndicate.build import build
from syndicate.config import load_config
from syndicate.errors import ConfigError, ConfigProblem, LockedError, OutputError, SyndicateError
from syndicate.model import BuildReport

EXIT_OK = 0
EXIT_STRICT = 1  # articles were skipped and --strict was given
EXIT_USAGE = 2  # the command line itself is wrong (argparse's own code)
EXIT_CONFIG = 3  # the config file is missing or has problems; nothing was written
EXIT_OUTPUT = 4  # a feed could not be rendered or written; its last good file is kept
EXIT_LOCKED = 5  # another build of the same site is running

EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}  every feed was written (skipped articles are only warnings)
  {EXIT_STRICT}  articles were skipped or had warnings, and --strict was given
  {EXIT_USAGE}  the command line is wrong
  {EXIT_CONFIG}  the config is missing or invalid: every problem is listed, nothing is written
  {EXIT_OUTPUT}  a feed could not be rendered or written; its last good file stays in place
  {EXIT_LOCKED}  another build of this site is running (see --wait)
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    log = _Log(args.log_format == "json")
    args.log = log
    try:
        return int(args.run(args))
    except ConfigError as e:
        for problem in e.problems:
            log.config_problem(problem)
        return EXIT_CONFIG
    except LockedError as e:
        log.problem("error", "", str(e))
        return EXIT_LOCKED
    except OutputError as e:
        log.problem("error", _display(e.path), e.reason)
        return EXIT_OUTPUT
    except SyndicateError as e:
        log.problem("error", "", str(e))
        return EXIT_OUTPUT
    except KeyboardInterrupt:
        log.problem("error", "", "interrupted; feeds already on disk are complete")
        return 130


class _Log:
    """Problems to stderr, one line each, the file first; as JSON lines with --log-format json."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def problem(self, level: str, file: str, message: str) -> None:
        if self.as_json:
            record = {"level": level, "file": file, "message": message}
            print(json.dumps(record, ensure_ascii=False), file=sys.stderr)
        elif file:
            print(f"{file}: {level}: {message}", file=sys.stderr)
        else:
            print(f"{level}: {message}", file=sys.stderr)

    def config_problem(self, problem: ConfigProblem) -> None:
        """`config.yaml:14: channels.world.limit: expected a positive integer, got 'ten'`"""
        if self.as_json:
            record = {"level": "error", "file": problem.file, "line": problem.line,
                      "key": problem.key, "message": problem.message}
            print(json.dumps(record, ensure_ascii=False), file=sys.stderr)
        else:
            print(problem, file=sys.stderr)

    def summary(self, report: BuildReport, verb: str) -> None:
        if self.as_json:
            print(json.dumps({
                "level": "info", "files": report.files_seen, "articles": report.articles,
                "skipped": len(report.skipped), "warnings": len(report.warnings),
                "feeds": len(report.feeds), "written": report.written,
                "failed": len(report.failures), "seconds": round(report.seconds, 3),
            }))
        else:
            print(_summary(report, verb))


def _parser() -> argparse.ArgumentParser:
    def add_common(p: argparse.ArgumentParser, default: object) -> None:
        # Accepted before and after the command (`syndicate -c x.yaml build` and
        # `syndicate build -c x.yaml`): the command's copy only overrides when given.
        p.add_argument("-c", "--config", default=default or "config.yaml", metavar="FILE",
                       help="the config file (default: ./config.yaml)")
        p.add_argument("-v", "--verbose", action="store_true", default=default or False,
                       help="print a summary line even when not on a terminal")
        p.add_argument("--strict", action="store_true", default=default or False,
                       help=f"exit {EXIT_STRICT} if any article was skipped or had a warning")
        p.add_argument("--log-format", choices=("text", "json"), default=default or "text",
                       help="text: one readable line per problem (default); json: one JSON "
                            "object per line, for log collectors")

    common = argparse.ArgumentParser(add_help=False)
    add_common(common, argparse.SUPPRESS)

    parser = argparse.ArgumentParser(
        prog="syndicate",
        description="Turn an archive of news-article files into RSS 2.0, Atom 1.0 and "
                    "JSON Feed files, one set per channel declared in the config.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"syndicate {__version__}")
    add_common(parser, None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    b = commands.add_parser(
        "build", parents=[common], epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="parse the archive and write every channel's feeds",
        description="Parse the archive, select each channel's items and write its feeds. "
                    "Files whose bytes would not change are left untouched. Silent on "
                    "success unless -v; problems go to stderr, one line per file.",
    )
    b.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="if another build holds the lock, wait this long for it (default 0)")
    b.add_argument("--allow-shrink", action="store_true",
                   help="replace published feeds even when far fewer items remain (by default "
                        "a feed that would lose most of its items is kept, as after an "
                        "unmounted or emptied source folder)")
    b.add_argument("--no-cache", action="store_true",
                   help="ignore the incremental cache: read every file and render every feed "
                        "(the result is the same, only slower)")
    b.set_defaults(run=_build)

    k = commands.add_parser(
        "check", parents=[common], epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="check the config and every article; write nothing",
        description="Check the config and every article and render every feed in memory; "
                    "list every problem, one line per file. Nothing is written.",
    )
    k.set_defaults(run=_check)
    return parser


def _build(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    with _ProgressBar(args) as progress:
        report = build(config, datetime.now(UTC), wait=args.wait, allow_shrink=args.allow_shrink,
                       use_cache=not args.no_cache, progress=progress)
    return _finish(report, args, "written")


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    with _ProgressBar(args) as progress:
        report = build(config, datetime.now(UTC), write=False, progress=progress)
    return _finish(report, args, "checked")


class _ProgressBar:
    """A progress bar on stderr while files are read, only on a terminal (never under
    cron or in a log), and only once there is enough to read for it to matter."""

    MIN_FILES = 500

    def __init__(self, args: argparse.Namespace) -> None:
        self.enabled = sys.stderr.isatty() and args.log_format == "text"
        self.bar: Any = None

    def __enter__(self) -> Callable[[int, int], None] | None:
        return self.update if self.enabled else None

    def update(self, done: int, total: int) -> None:
        if self.bar is None and total >= self.MIN_FILES:
            from tqdm import tqdm  # only needed on a terminal

            self.bar = tqdm(total=total, unit="file", desc="reading", leave=False,
                            file=sys.stderr, dynamic_ncols=True)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _finish(report: BuildReport, args: argparse.Namespace, verb: str) -> int:
    log: _Log = args.log
    for notice in report.notices:
        log.problem("notice", "", notice)
    for problem in report.problems:
        log.problem("skipped" if problem.skipped else "warning", _display(problem.path),
                    problem.message)
    for failure in report.failures:
        log.problem("error", _display(failure.path), f"{failure.reason}; the last good file is kept")
    for feed in report.feeds:
        if feed.dropped_for_size:
            log.problem("warning", _display(feed.path), f"{feed.dropped_for_size} oldest items "
                        "left out to stay under the channel's max_bytes")
    if args.verbose or sys.stdout.isatty():
        log.summary(report, verb)
    if report.failures:
        return EXIT_OUTPUT
    if args.strict and report.problems:
        return EXIT_STRICT
    return EXIT_OK


def _summary(report: BuildReport, verb: str) -> str:
    skipped, warnings = len(report.skipped), len(report.warnings)
    feeds = len(report.feeds)
    files = (f"{report.written} {verb}, {feeds - report.written} unchanged"
             if verb == "written" else f"{feeds} {verb}")
    failed = f", {len(report.failures)} failed" if report.failures else ""
    return (f"syndicate: {report.files_seen} files ({report.files_parsed} read), "
            f"{report.articles} articles ({skipped} skipped, {warnings} warnings); "
            f"{feeds} feeds: {files}{failed} in {report.seconds:.1f}s")


def _display(path: str | Path) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else str(path)
