"""The command line. Translates errors into messages and exit codes; the only place
that prints or reads the clock."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from syndicate import __version__
from syndicate.build import build
from syndicate.config import PLACEHOLDER_URL, load_config
from syndicate.errors import ConfigError, ConfigProblem, LockedError, OutputError, SyndicateError
from syndicate.model import BuildReport

EXIT_OK = 0
EXIT_STRICT = 1  # articles were skipped and --strict was given; `show`: the file gives no article
# The command line itself is wrong (argparse's own code). Also `init` onto an existing
# file: nothing is wrong with that config (EXIT_CONFIG would say so to scripts); the
# request is what cannot be done, and another -c fixes it. And `serve` on an address it
# cannot listen on.
EXIT_USAGE = 2
EXIT_CONFIG = 3  # the config file is missing or has problems; nothing was written
EXIT_OUTPUT = 4  # a feed could not be rendered or written (or no source, a killed worker)
EXIT_LOCKED = 5  # another build of the same site is running

EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}  every feed was written (skipped articles are only warnings)
  {EXIT_STRICT}  articles were skipped or had warnings, and --strict was given;
     show: the file gives no article (the reason is printed)
  {EXIT_USAGE}  the command line is wrong; init: the config file already exists (init never
     overwrites one); serve: cannot listen on the address given
  {EXIT_CONFIG}  the config is missing or invalid: every problem is listed, nothing is written
  {EXIT_OUTPUT}  a feed could not be rendered or written, the source folder is missing, or a
     worker process was killed (out of memory?); the last good files stay in place;
     cron: the crontab could not be read or changed
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
    except BrokenPipeError:  # `syndicate show FILE | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


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
                "not_due": len(report.not_due),
                "archives": len(report.archives),
                "archives_written": sum(1 for a in report.archives if a.written),
                "hub_notified": len(report.hub_notified), "hub_failed": len(report.hub_failed),
                "probed": report.probed, "probe_failed": len(report.probe_failures),
            }))
        else:
            print(_summary(report, verb))


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's, told the terminal's width. argparse makes a formatter for every
    argument added (to check its metavar), and one not told the width imports shutil
    (and with it bz2 and lzma) to find it: 2-5 ms of every run, help or not."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_columns() - 2)


def _columns() -> int:
    """shutil.get_terminal_size().columns: $COLUMNS, else the terminal's, else 80."""
    with contextlib.suppress(KeyError, ValueError):
        if (columns := int(os.environ["COLUMNS"])) > 0:
            return columns
    stdout = sys.__stdout__  # None without a stdout
    try:
        return (os.get_terminal_size(stdout.fileno()).columns if stdout else 0) or 80
    except (ValueError, OSError):  # not a terminal, or closed
        return 80


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

    common = argparse.ArgumentParser(add_help=False, formatter_class=_HelpFormatter)
    add_common(common, argparse.SUPPRESS)

    parser = argparse.ArgumentParser(
        prog="syndicate",
        description="Turn an archive of news-article files into RSS 2.0, Atom 1.0 and "
                    "JSON Feed files, one set per channel declared in the config.",
        epilog=EXIT_CODES,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"syndicate {__version__}")
    add_common(parser, None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    b = commands.add_parser(
        "build", parents=[common], epilog=EXIT_CODES,
        formatter_class=_HelpFormatter,
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
    b.add_argument("--due", action="store_true",
                   help="build only the channels whose schedule has come due since their last "
                        "build (channels without a schedule always are); for a crontab line "
                        "that runs every minute, as `syndicate cron` writes it")
    b.add_argument("--probe-enclosures", action="store_true",
                   help="ask image servers for each enclosure's real size and type (as "
                        "site.probe_enclosures: true does); each image is asked once")
    b.set_defaults(run=_build)

    k = commands.add_parser(
        "check", parents=[common], epilog=EXIT_CODES,
        formatter_class=_HelpFormatter,
        help="check the config and every article; write nothing",
        description="Check the config and every article and render every feed in memory; "
                    "list every problem, one line per file. Nothing is written.",
    )
    k.set_defaults(run=_check)

    ls = commands.add_parser(
        "list", parents=[common], epilog=EXIT_CODES,
        formatter_class=_HelpFormatter,
        help="show each channel's article counts and newest date",
        description="Read the archive and show a table of the channels: MATCHED is how many "
                    "articles the channel's rules select, IN FEED how many its feeds carry "
                    "(after limit and max_bytes), NEWEST the newest item's date in the "
                    "site's time zone. Writes nothing.",
    )
    ls.set_defaults(run=_list)

    sh = commands.add_parser(
        "show", parents=[common], epilog=EXIT_CODES,
        formatter_class=_HelpFormatter,
        help="print one article file as the parser reads it, as JSON",
        description="Parse FILE with the config's time zone and encodings (UTC and the "
                    "defaults without a config) and print the article as JSON. For a file "
                    f"a build would skip, print why and exit {EXIT_STRICT}.",
    )
    sh.add_argument("file", metavar="FILE", help="an article file")
    sh.set_defaults(run=_show)

    sv = commands.add_parser(
        "serve", parents=[common], epilog=EXIT_CODES,
        formatter_class=_HelpFormatter,
        help="preview the output folder over HTTP on this machine",
        description="Serve the output folder (and nothing else) over HTTP with the right "
                    "Content-Type for each format, ETag and Last-Modified, 304 answers and "
                    "gzip, as a web server would publish it. Ctrl-C stops it.",
    )
    sv.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    sv.add_argument("--build", action="store_true",
                    help="build first, then rebuild whenever article files or the config change")
    sv.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                    help="with --build, how often to look for changes (default 2)")
    sv.set_defaults(run=_serve)

    it = commands.add_parser(
        "init", parents=[common], epilog=EXIT_CODES,
        formatter_class=_HelpFormatter,
        help="write a starter config.yaml from the sections found in the archive",
        description="Read the archive and write a config (the -c file, default "
                    "./config.yaml) with one channel per section found plus an `all` "
                    "channel, every key explained in a comment. Never overwrites a file.",
    )
    it.add_argument("--source", metavar="DIR",
                    help="the article folder (default: ./articles beside the config)")
    it.add_argument("--base-url", default=PLACEHOLDER_URL, metavar="URL",
                    help=f"public URL of the output folder (default: {PLACEHOLDER_URL}, to edit)")
    it.set_defaults(run=_init)

    cr = commands.add_parser(
        "cron", parents=[common], epilog=EXIT_CODES,
        formatter_class=_HelpFormatter,
        help="print, install or remove the crontab line for the configured schedule",
        description="Print the crontab line that builds the feeds on the config's schedule: "
                    "at site.schedule when every channel shares it, else every minute with "
                    "`build --due`. The line uses absolute paths, runs in the config's folder "
                    "and appends its output to a log file. --install puts it in the crontab "
                    "(replacing the line installed before for this config), --remove takes "
                    "it out; no other line of the crontab changes.",
    )
    action = cr.add_mutually_exclusive_group()
    action.add_argument("--install", action="store_true",
                        help="add the line to the crontab, or replace this config's line")
    action.add_argument("--remove", action="store_true", help="take this config's line out")
    cr.add_argument("--log", metavar="FILE", dest="log_file",
                    help="append the build's output to FILE (default: syndicate.log in the "
                         "site's cache folder)")
    cr.add_argument("--user", metavar="NAME",
                    help="use NAME's crontab rather than yours (root only: crontab -u NAME)")
    cr.set_defaults(run=_cron)
    return parser


def _build(args: argparse.Namespace) -> int:
    if args.due and args.no_cache:  # the cache is where the last build times are kept
        args.log.problem("error", "", "--due needs the cache (it remembers when each channel "
                         "was built); drop --no-cache")
        return EXIT_USAGE
    config = load_config(args.config, keep_tree=not args.no_cache)
    with _ProgressBar(args) as progress:
        report = build(config, datetime.now(UTC), wait=args.wait, allow_shrink=args.allow_shrink,
                       use_cache=not args.no_cache, progress=progress, due=args.due, notify=True,
                       probe=args.probe_enclosures)
    return _finish(report, args, "written")


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    with _ProgressBar(args) as progress:
        report = build(config, datetime.now(UTC), write=False, progress=progress)
    return _finish(report, args, "checked")


def _cron(args: argparse.Namespace) -> int:
    from syndicate import crontab

    config = load_config(args.config)
    log_file = Path(args.log_file).absolute() if args.log_file else crontab.default_log(config)
    text = crontab.line(config, crontab.plan(config), crontab.command(sys.argv[0], sys.executable),
                        log_file)
    if not (args.install or args.remove):
        print(text)
        return EXIT_OK
    whose = f"{args.user}'s crontab" if args.user else "the crontab"
    if args.install:
        try:  # cron's shell cannot append to a log in a folder that does not exist
            log_file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(str(log_file.parent), f"cannot create: {e.strerror or e}") from e
        changed = crontab.install(text, crontab.marker(config), args.user)
        message = f"{'installed in' if changed else 'already in'} {whose}: {text}"
    else:
        changed = crontab.remove(crontab.marker(config), args.user)
        message = (f"removed from {whose}" if changed
                   else f"nothing to remove: {whose} has no line for {_display(config.path)}")
    if args.verbose or sys.stdout.isatty():
        print(f"syndicate: {message}")
    return EXIT_OK


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

            # No monitor thread: worker processes are only forked from a single-threaded
            # process (see workers.py).
            tqdm.monitor_interval = 0
            self.bar = tqdm(total=total, unit="file", desc="reading", leave=False,
                            file=sys.stderr, dynamic_ncols=True)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


# The commands below import their modules when run: cron's `build` loads none of them.

def _list(args: argparse.Namespace) -> int:
    from syndicate.survey import count_channels

    config = load_config(args.config)
    census = count_channels(config, datetime.now(UTC))
    zone = ZoneInfo(config.site.timezone)

    def newest(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else "-"

    if args.log_format == "json":
        for count in census.channels:
            print(json.dumps({"channel": count.channel.id, "title": count.channel.title,
                              "matched": count.matched, "items": count.items,
                              "newest": count.newest.isoformat() if count.newest else None},
                             ensure_ascii=False))
        return EXIT_OK
    rows = [("CHANNEL", "MATCHED", "IN FEED", "NEWEST", "TITLE")]
    rows += [(c.channel.id, str(c.matched), str(c.items), newest(c.newest), c.channel.title)
             for c in census.channels]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  "
              f"{row[3]:<{widths[3]}}  {row[4]}".rstrip())
    skipped = f", {census.skipped} skipped (see `syndicate check`)" if census.skipped else ""
    print(f"{census.files} files, {census.articles} articles{skipped}; times in {zone.key}")
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from syndicate.survey import article_json, inspect_file

    log: _Log = args.log
    file = Path(args.file)
    if not file.is_file():
        log.problem("error", args.file, "no such file")
        return EXIT_USAGE
    config = None
    if Path(args.config).exists():
        config = load_config(args.config)
    else:
        log.problem("notice", "", f"no {args.config}: reading with time zone UTC and the "
                    "default encodings")
    try:
        inspection = inspect_file(file, config, datetime.now(UTC))
    except OSError as e:
        log.problem("error", args.file, f"cannot read: {e.strerror or e}")
        return EXIT_USAGE
    print(article_json(inspection))
    if inspection.article is None:
        log.problem("skipped", _display(file), inspection.reason or "")
        return EXIT_STRICT
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from syndicate.serve import PreviewServer, Rebuilder

    config = load_config(args.config)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    # The rebuilder's first look at the files comes before the first build, so a file
    # added while that build runs is built at the first poll, not missed.
    rebuilder = (Rebuilder(Path(args.config), config, lambda: datetime.now(UTC), say,
                           interval=max(0.1, args.interval)) if args.build else None)
    if args.build:
        report = build(config, datetime.now(UTC), wait=60)
        _finish(report, args, "written")
    root = config.site.output
    if not root.is_dir():
        raise OutputError(str(root), "the output folder does not exist: run `syndicate build` "
                          "first, or serve with --build")
    try:
        server = PreviewServer(args.host, args.port, root, say)
    except OSError as e:
        args.log.problem("error", "", f"cannot listen on {args.host} port {args.port}: "
                         f"{e.strerror or e}")
        return EXIT_USAGE
    print(f"syndicate: serving {_display(root)} at {server.url} (Ctrl-C to stop)", flush=True)
    # Ctrl-C, and a service manager's stop, end it cleanly; SIGINT explicitly, since a
    # shell starts background jobs with it ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if rebuilder:
            rebuilder.start()
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if rebuilder:
            rebuilder.stop()
        server.server_close()
    say("syndicate: stopped")
    return EXIT_OK


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _init(args: argparse.Namespace) -> int:
    from syndicate.parse import DEFAULT_ENCODINGS
    from syndicate.starter import starter_config
    from syndicate.survey import survey_archive

    target = Path(args.config)
    refusal = ("already exists; init never overwrites a config (remove it, or write "
               "another file with -c)")
    if target.exists() or target.is_symlink():
        args.log.problem("error", _display(target), refusal)
        return EXIT_USAGE
    source = Path(args.source) if args.source else target.absolute().parent / "articles"
    if not source.is_dir():
        raise OutputError(str(source), "no such folder: give the article folder with --source DIR")
    survey = survey_archive(source, DEFAULT_ENCODINGS, datetime.now(UTC))
    text = starter_config(survey, target, args.base_url)
    try:
        with open(target, "x", encoding="utf-8") as f:  # "x": never over a file made meanwhile
            f.write(text)
    except FileExistsError:
        args.log.problem("error", _display(target), refusal)
        return EXIT_USAGE
    except OSError as e:
        raise OutputError(str(target), f"cannot write: {e.strerror or e}") from e
    sections = len(survey.sections)
    skipped = f" ({survey.skipped} files skipped: see `syndicate check`)" if survey.skipped else ""
    print(f"syndicate: wrote {_display(target)} with {sections + 1} channels (all, and one per "
          f"section) from {survey.articles} articles in {_display(source)}{skipped}.\n"
          f"Set site.base_url, then run `syndicate check` and `syndicate build`.")
    return EXIT_OK


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
    for url, why in report.hub_failed:
        log.problem("warning", url, f"the WebSub hub was not told of this update ({why}); "
                    "it will be told after the next build")
    unknown: dict[str, list[str]] = {}
    for url, why in report.probe_failures:
        unknown.setdefault(why, []).append(url)
    for why, urls in unknown.items():
        log.problem("warning", "", f"enclosure size unknown (length 0) for {len(urls)} "
                    f"image{'s' if len(urls) > 1 else ''}: {why}; e.g. {urls[0]}")
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
    if report.not_due and not report.feeds and not report.failures:
        return f"syndicate: nothing due ({_channels(len(report.not_due))} waiting for their schedule)"
    waiting = f"; {_channels(len(report.not_due))} not due" if report.not_due else ""
    return (f"syndicate: {report.files_seen} files ({report.files_parsed} read), "
            f"{report.articles} articles ({skipped} skipped, {warnings} warnings); "
            f"{feeds} feeds: {files}{failed} in {report.seconds:.1f}s{waiting}{_extras(report)}")


def _extras(report: BuildReport) -> str:
    """Archives, the WebSub hub and enclosure probing, when they did anything."""
    extras = []
    if report.archives:
        written = sum(1 for a in report.archives if a.written)
        extras.append(f"{len(report.archives)} archive documents ({written} written)")
    if report.hub_notified or report.hub_failed:
        extras.append(f"hub told of {len(report.hub_notified)} feeds"
                      + (f" ({len(report.hub_failed)} failed)" if report.hub_failed else ""))
    if report.probed or report.probe_failures:
        extras.append(f"{report.probed} enclosures probed"
                      + (f" ({len(report.probe_failures)} without a size)"
                         if report.probe_failures else ""))
    return "".join(f"; {extra}" for extra in extras)


def _channels(count: int) -> str:
    return f"{count} channel" if count == 1 else f"{count} channels"


def _display(path: str | Path) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else str(path)
