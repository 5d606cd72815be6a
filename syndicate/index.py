"""The archive as entries: find the article files, and run the parser's first pass on
each file the cache does not already know, in parallel on every core."""

from __future__ import annotations

import hashlib
import os
import zoneinfo
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from syndicate import __version__
from syndicate.cache import Cache, FileRecord
from syndicate.errors import ArticleError, OutputError
from syndicate.model import Config, Entry, Problem
from syndicate.parse import read_entry
from syndicate.workers import run_batches

# Files that are plainly not articles are passed over without a word; anything else that
# fails to parse is named in the report, since it may be an article that broke.
NOT_ARTICLES = {
    ".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".svg", ".bmp", ".ico", ".tif",
    ".tiff", ".heic", ".mp3", ".mp4", ".m4a", ".mov", ".webm", ".pdf", ".zip", ".gz",
    ".tgz", ".bz2", ".xz", ".7z", ".tar", ".md", ".rst", ".json", ".yaml", ".yml",
    ".toml", ".ini", ".cfg", ".csv", ".tsv", ".log", ".css", ".js", ".py", ".sh", ".db",
    ".sqlite", ".xml", ".atom", ".opml", ".html", ".htm", ".doc", ".docx", ".xls", ".xlsx",
}
CHUNK = 64  # files per job sent to a worker

Progress = Callable[[int, int], None]  # (files read, files to read)


@dataclass(frozen=True, slots=True)
class ArchiveIndex:
    files: int  # candidate files seen
    parsed: int  # files read this run (the rest came from the cache)
    entries: tuple[Entry, ...]  # one per good file, in path order
    problems: tuple[Problem, ...]  # skipped files and warnings, in path order
    time_sensitive: bool = False  # some file was judged against the clock (see Entry.recheck)


def parse_settings(config: Config) -> str:
    """What a file's entry depends on besides its bytes; a change invalidates the cache."""
    return f"{__version__}|{config.site.timezone}|{','.join(config.site.encodings)}"


def scan(config: Config) -> Iterator[tuple[str, os.stat_result]]:
    """(path relative to the source, stat) for every candidate article file, in a stable
    order. Dotfiles and dot-folders, non-article extensions, and the output and cache
    folders (when they live inside the source) are passed over."""
    site = config.site
    skip = {str(site.output), str(site.cache)}
    root = str(site.source)
    prefix = len(root) + 1
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                found = sorted(listing, key=lambda e: e.name)
        except OSError:
            continue
        subfolders = []
        for item in found:
            if item.name.startswith("."):
                continue
            if item.is_dir(follow_symlinks=False):
                if item.path not in skip:
                    subfolders.append(item.path)
            elif _extension(item.name) not in NOT_ARTICLES:
                try:
                    yield item.path[prefix:], item.stat()
                except OSError:
                    continue
        stack.extend(reversed(subfolders))


def _extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


@dataclass(frozen=True, slots=True)
class Listing:
    """The candidate files and their stat signatures, and a fingerprint of them all: an
    equal fingerprint means no file was added, removed, renamed or touched."""

    files: tuple[tuple[str, int, int], ...]  # (path, size, mtime_ns), in scan order
    fingerprint: str


def list_archive(config: Config) -> Listing:
    site = config.site
    if not site.source.is_dir():
        raise OutputError(str(site.source), "the source folder does not exist or is not a "
                          "folder (unmounted disk?); feeds left as they are")
    files = tuple((path, stat.st_size, stat.st_mtime_ns) for path, stat in scan(config))
    digest = hashlib.sha256(f"{parse_settings(config)}|{site.source}".encode())
    digest.update("\n".join(f"{p}\0{size}\0{mtime}" for p, size, mtime in files).encode(
        "utf-8", "surrogateescape"))
    return Listing(files, digest.hexdigest())


def index_archive(config: Config, cache: Cache, now: datetime, listing: Listing,
                  progress: Progress | None = None) -> ArchiveIndex:
    site = config.site
    known = cache.files()
    records: dict[str, FileRecord] = {}
    todo: list[tuple[str, int, int]] = []
    for path, size, mtime_ns in listing.files:
        record = known.pop(path, None)
        if record is not None and (record.size, record.mtime_ns) == (size, mtime_ns):
            records[path] = record
        else:
            todo.append((path, size, mtime_ns))
    cache.forget_files(list(known))  # deleted or renamed since the last run

    fresh: list[tuple[str, FileRecord]] = []
    time_sensitive = False
    for path, record, recheck in first_pass(config, todo, now, progress):
        records[path] = record
        if recheck:
            time_sensitive = True
        else:
            fresh.append((path, record))
    cache.put_files(fresh)

    entries: list[Entry] = []
    problems: list[Problem] = []
    for path in sorted(records):
        record = records[path]
        if record.entry is None:
            problems.append(Problem(str(site.source / path), record.skip_reason, skipped=True))
        else:
            entries.append(record.entry)
            if record.entry.warnings:
                problems.extend(Problem(str(site.source / path), w, skipped=False)
                                for w in record.entry.warnings)
    return ArchiveIndex(len(records), len(todo), tuple(entries), tuple(problems), time_sensitive)


def first_pass(config: Config, todo: Sequence[tuple[str, int, int]], now: datetime,
                progress: Progress | None) -> Iterator[tuple[str, FileRecord, bool]]:
    site = config.site
    jobs = [(str(site.source), site.timezone, site.encodings, now, todo[i:i + CHUNK])
            for i in range(0, len(todo), CHUNK)]
    done = 0
    for chunk in run_batches(_read_chunk, jobs, len(todo)):
        done += len(chunk)
        if progress:
            progress(done, len(todo))
        yield from chunk


def _read_chunk(job: tuple[str, str, Sequence[str], datetime, Sequence[tuple[str, int, int]]]
                ) -> list[tuple[str, FileRecord, bool]]:
    """Worker: the first pass over a few files. Returns (path, record, recheck), where
    recheck marks an entry judged against the clock (a date 'in the future'), which must
    not be cached: it may become plausible later."""
    source, timezone, encodings, now, files = job
    zone = zoneinfo.ZoneInfo(timezone)
    out: list[tuple[str, FileRecord, bool]] = []
    for path, size, mtime_ns in files:
        try:
            with open(os.path.join(source, path), "rb") as handle:
                data = handle.read()
            entry, _body = read_entry(data, path, zone=zone, encodings=encodings, now=now)
        except ArticleError as e:
            out.append((path, FileRecord(size, mtime_ns, None, e.reason), False))
        except OSError as e:
            out.append((path, FileRecord(size, mtime_ns, None, f"cannot read: {e.strerror or e}"),
                        True))
        else:
            out.append((path, FileRecord(size, mtime_ns, entry), entry.recheck))
    return out
