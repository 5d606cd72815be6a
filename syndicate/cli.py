"""The command line. Translates errors into messages and exit codes; the only place
that prints or reads the clock."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from syndicate import __version__
from syndicate.build import build
from syndicate.config import load_config
from syndicate.errors import ConfigError, LockedError, SyndicateError
from syndicate.model import BuildReport, Problem

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
    try:
        return int(args.run(args))
    except ConfigError as e:
        for problem in e.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except LockedError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_LOCKED
    except SyndicateError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_OUTPUT
    except KeyboardInterrupt:
        print("interrupted; feeds already on disk are complete", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default="config.yaml", metavar="FILE",
                        help="the config file (default: ./config.yaml)")
    common.add_argument("-v", "--verbose", action="store_true",
                        help="print a summary line even when not on a terminal")
    common.add_argument("--strict", action="store_true",
                        help=f"exit {EXIT_STRICT} if any article was skipped or had a warning")

    parser = argparse.ArgumentParser(
        prog="syndicate",
        description="Turn an archive of news-article files into RSS 2.0, Atom 1.0 and "
                    "JSON Feed files, one set per channel declared in the config.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"syndicate {__version__}")
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
    report = build(config, datetime.now(UTC), wait=args.wait)
    return _finish(report, args, "written")


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    report = build(config, datetime.now(UTC), write=False)
    return _finish(report, args, "checked")


def _finish(report: BuildReport, args: argparse.Namespace, verb: str) -> int:
    for problem in report.problems:
        print(_problem_line(problem), file=sys.stderr)
    for failure in report.failures:
        print(f"error: {failure}; its last good file is kept", file=sys.stderr)
    for feed in report.feeds:
        if feed.dropped_for_size:
            print(f"warning: {_display(feed.path)}: {feed.dropped_for_size} oldest items left "
                  f"out to stay under the channel's max_bytes", file=sys.stderr)
    if args.verbose or sys.stdout.isatty():
        print(_summary(report, verb))
    if report.failures:
        return EXIT_OUTPUT
    if args.strict and report.problems:
        return EXIT_STRICT
    return EXIT_OK


def _problem_line(problem: Problem) -> str:
    kind = "skipped" if problem.skipped else "warning"
    return f"{_display(problem.path)}: {kind}: {problem.message}"


def _summary(report: BuildReport, verb: str) -> str:
    skipped, warnings = len(report.skipped), len(report.warnings)
    feeds = len(report.feeds)
    files = (f"{report.written} {verb}, {feeds - report.written} unchanged"
             if verb == "written" else f"{feeds} {verb}")
    failed = f", {len(report.failures)} failed" if report.failures else ""
    return (f"syndicate: {report.files_seen} files, {report.articles} articles "
            f"({skipped} skipped, {warnings} warnings); {feeds} feeds: {files}{failed} "
            f"in {report.seconds:.1f}s")


def _display(path: str | Path) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else str(path)
