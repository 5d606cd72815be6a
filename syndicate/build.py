"""A build from start to end: the lock, the cache, the archive's listing, and the
shortcut for the commonest cron run, the one that finds nothing changed. Everything else
is pipeline.py, which this module uses only when there is work to do: a run that changes
nothing renders nothing. (For an archive of ASIDE_MIN files or more it imports some of
the parser and renderers while the listing is made, where it would otherwise wait.)"""

from __future__ import annotations

import hashlib
import importlib
import os
import pickle
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from syndicate import __version__
from syndicate.cache import FILE_NAME, Cache, damaged
from syndicate.errors import OutputError
from syndicate.listing import Listing, list_archive, parse_settings
from syndicate.model import BuildReport, Config, Failure, FeedResult, Problem
from syndicate.output import build_lock, remove_leftovers, signature
from syndicate.schedule import due_channels
from syndicate.workers import aside

if TYPE_CHECKING:
    from syndicate.index import Progress

Outputs = dict[str, tuple[int, int]]  # output file path → (size, mtime_ns)

# Archives of fewer files than this are listed in 25 ms or less, about the time that the
# first two steps of _importing_the_pipeline take: `aside` would keep a build that finds
# nothing changed waiting.
ASIDE_MIN = 5000


def build(config: Config, now: datetime, *, write: bool = True, wait: float = 0.0,
          allow_shrink: bool = False, use_cache: bool = True,
          progress: Progress | None = None, due: bool = False, notify: bool = False,
          probe: bool = False) -> BuildReport:
    """Build every channel. With write=False (`syndicate check`) nothing is written (not
    even the cache) and no lock is taken, but every feed is still rendered, so render
    failures show. With due=True only the channels whose schedule has come due since
    their last build (see schedule.py) are built; the others are left alone.

    With notify=True (`syndicate build`) the WebSub hub, if the site has one, is told of
    each feed written. probe=True asks image servers for enclosure sizes, as
    site.probe_enclosures does (never when write=False)."""
    started = time.monotonic()
    if probe:
        config = replace(config, site=replace(config.site, probe_enclosures=True))
    if not write:
        return _build(config, now, started=started, write=False, allow_shrink=allow_shrink,
                      use_cache=False, progress=progress)
    with build_lock(config.site.cache, wait):
        remove_leftovers(config.site.output)
        return _build(config, now, started=started, write=True, allow_shrink=allow_shrink,
                      use_cache=use_cache, progress=progress, due=due, notify=notify)


def _build(config: Config, now: datetime, *, started: float, write: bool, allow_shrink: bool,
           use_cache: bool, progress: Progress | None, due: bool = False,
           notify: bool = False) -> BuildReport:
    """The build with the site's cache. A cache found damaged only once in use (SQLite
    checks a page when it reads it: after a power cut, say, the first pages may be
    whole and a later one not) is rebuilt as a damaged one found on opening is, and the
    build made again; any other failure of the cache (a full disk, a read-only folder)
    is an OutputError naming it, not a traceback."""
    site = config.site
    settings = parse_settings(config)
    where = str(site.cache / FILE_NAME) if use_cache else "the build's cache"
    try:
        cache, notice = Cache.open(site.cache if use_cache else None, settings)
    except sqlite3.Error as e:
        raise OutputError(where, f"cannot use the cache: {e}") from e
    built = partial(_built, config, now, started=started, write=write, allow_shrink=allow_shrink,
                    use_cache=use_cache, progress=progress, due=due, notify=notify)
    try:
        try:
            return built(cache, notice)
        except sqlite3.DatabaseError as e:
            if not (use_cache and damaged(e)):
                raise
            cache.close()
            cache, notice = Cache.rebuilt(site.cache, settings, str(e))
            return built(cache, notice)
    except sqlite3.Error as e:
        raise OutputError(where, f"cannot use the cache: {e}") from e
    finally:
        cache.close()


def _built(config: Config, now: datetime, cache: Cache, notice: str | None, *, started: float,
           write: bool, allow_shrink: bool, use_cache: bool, progress: Progress | None,
           due: bool, notify: bool) -> BuildReport:
    """_build's work, with this cache (and the notice of its opening, if any)."""
    site = config.site
    notices: tuple[str, ...] = (notice,) if notice else ()
    building = due_channels(config, cache.builds(), now) if due else config.channels
    not_due = tuple(c.id for c in config.channels if c not in building)
    if not building:  # the every-minute cron run with nothing to do: not even a scan
        return BuildReport(files_seen=0, articles=0, problems=(), feeds=(),
                           seconds=time.monotonic() - started, notices=notices,
                           not_due=not_due)
    # When the cache knows no file, every file is read: the first pass takes their
    # stat signatures as it reads them (see list_archive), and there is no last
    # outcome to compare with. Otherwise the listing tells whether the last build's
    # outcome stands (see the no-change shortcut below).
    known = cache.file_count()
    saved = (cache.outcome() if write and not not_due and known
             and not cache.pending_pings() else None)
    last_key = saved[0] if saved else None
    found: Listing | None
    if not known:
        found = list_archive(config, stat=False)
    elif known < ASIDE_MIN:
        found = _listing_unless_same(config, last_key)
    else:
        # Stat calls are the system's work more than this process's: the listing is
        # made in a process of its own while this one imports what a build with work
        # to do will need (a new story's build finishes 50-70 ms sooner at 10,000
        # files), until the listing comes.
        found = aside(partial(_listing_unless_same, config, last_key),
                      _importing_the_pipeline())
    if found is None:  # the last build's inputs
        assert saved is not None
        last = _last_report(saved[1])
        if last is not None:
            for channel in building:
                cache.put_build(channel.id, now.astimezone(UTC))
            cache.commit()
            return replace(last, seconds=time.monotonic() - started, notices=notices)
        found = list_archive(config)  # an output file was touched: the full run needs the files
    listing = found
    cache.forget_outcome()
    cache.commit()
    # There is work to do (see the module's docstring).
    from syndicate import pipeline
    from syndicate.stories import DamagedSnapshot

    def run() -> tuple[BuildReport, bool, Listing]:
        return pipeline.run(config, cache, now, listing, building=building, write=write,
                            allow_shrink=allow_shrink, progress=progress, notify=notify)

    try:
        report, repeatable, read = run()
    except DamagedSnapshot as e:  # raised before anything is written
        cache.forget_snapshot()
        cache.commit()
        notices += (f"{site.cache}: {e}; computed again from the archive",)
        report, repeatable, read = run()
    if repeatable and use_cache and not not_due:
        keep_outcome(cache, outcome_key(config, read), config, report)
    return replace(report, seconds=time.monotonic() - started, notices=notices, not_due=not_due)


# What pipeline.run needs, in steps of a few milliseconds each for `aside`: a build that
# turns out to have nothing to do waits for the step under way when the listing comes, and
# no more. The largest steps (10-16 ms) come first: lxml, and python-dateutil's time zones
# (ctypes, importlib.resources) and parser, which feedgen imports; then the pipeline's
# own modules, then the rest of its rendering stack (pipeline.RENDERING_STACK).
_BEFORE_THE_PIPELINE = (
    "lxml.etree", "dateutil.tz", "dateutil.parser", "syndicate.clean", "syndicate.parse",
    "syndicate.index", "syndicate.select", "syndicate.stories", "syndicate.archive",
    "syndicate.pipeline",
)


def _importing_the_pipeline() -> Iterator[Callable[[], object]]:
    for name in _BEFORE_THE_PIPELINE:
        yield partial(_import, name)
    from syndicate.pipeline import RENDERING_STACK  # (imported by the last step)

    for name in RENDERING_STACK:
        yield partial(_import, name)


def _import(name: str) -> None:
    with suppress(ImportError):  # (another version of feedgen may not use dateutil)
        importlib.import_module(name)


# --- the no-change shortcut ---------------------------------------------------------------
#
# A build's output depends on the config, the archive's files and the output files left by
# the last build (pipeline.run says which builds also depend on the clock or the network:
# those are never kept). When the config and the listing are those of the
# last build and every output file is as it left it, a full run would find every feed,
# page and archive month up to date and write nothing: the shortcut gives that run's
# report without loading the last run's stories or computing any digest.

def outcome_key(config: Config, listing: Listing) -> str:
    """Everything a build's output depends on besides the output folder itself."""
    return hashlib.sha256(f"{__version__}\n{config!r}\n{listing.fingerprint}".encode(
        "utf-8", "surrogateescape")).hexdigest()


def keep_outcome(cache: Cache, key: str, config: Config, report: BuildReport) -> None:
    kept = replace(report, seconds=0.0, files_parsed=0, notices=(), not_due=(),
                   feeds=tuple(replace(f, written=False) for f in report.feeds),
                   archives=tuple(replace(a, written=False) for a in report.archives),
                   hub_notified=(), hub_failed=())
    cache.put_outcome(key, pickle.dumps((output_files(config), kept), protocol=5))
    cache.commit()


def _listing_unless_same(config: Config, last_key: str | None) -> Listing | None:
    """list_archive, in aside's worker process; None when the listing makes the last
    build's outcome key, since the shortcut then needs nothing of it (and sending 10,000
    files' listing to the main process, which reads it, costs it 5-10 ms of a 0.1 s
    build)."""
    listing = list_archive(config)
    return None if last_key is not None and outcome_key(config, listing) == last_key else listing


def _last_report(saved: bytes) -> BuildReport | None:
    """The last build's report (from what keep_outcome saved) when its output files are
    untouched."""
    try:
        outputs, report = pickle.loads(saved)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError,
            ValueError, IndexError):
        return None  # unreadable: the full run decides
    if not (isinstance(outputs, dict) and isinstance(report, BuildReport)
            and all(isinstance(f, (FeedResult, Problem, Failure))
                    for f in (*report.feeds, *report.archives, *report.problems))):
        return None
    return report if _untouched(outputs) else None


def _untouched(outputs: Outputs) -> bool:
    return all(signature(name) == kept for name, kept in outputs.items())


def output_files(config: Config) -> Outputs:
    """The stat signature of every file in the output folder and its subfolders (dotfiles
    and dot-folders, such as a cache kept there, left out)."""
    found: Outputs = {}
    stack = [str(config.site.output)]
    while stack:
        try:
            with os.scandir(stack.pop()) as listing:
                for item in listing:
                    if item.name.startswith("."):
                        continue
                    if item.is_dir(follow_symlinks=False):
                        stack.append(item.path)
                    elif item.is_file(follow_symlinks=False):
                        stat = item.stat()
                        found[item.path] = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            continue
    return found
