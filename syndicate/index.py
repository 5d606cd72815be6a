"""The archive as entries: the parser's first pass on each file the cache does not
already know (listing.py finds the files), in parallel on every core."""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from syndicate.cache import Cache, FileRecord, FileRow, file_row, record_from_row
from syndicate.errors import ArticleError
from syndicate.listing import UNKNOWN, Completion, Listing
from syndicate.model import Config, Entry, Problem
from syndicate.parse import read_entry
from syndicate.workers import run_batches

CHUNK = 64  # files per job sent to a worker
# Rows are stored in batches of this many as they come, so that a large archive's rows
# are never all held at once; the last rows may be left to the caller (index_archive).
# Memory that the main process frees and fills again while forked workers live is copied
# (copy-on-write): batches of 20,000 made a 100k build's processes 70 MB larger in all.
ROWS_PER_INSERT = 5_000

Progress = Callable[[int, int], None]  # (files read, files to read)


@dataclass(frozen=True, slots=True)
class ArchiveIndex:
    files: int  # candidate files seen
    parsed: int  # files read this run (the rest came from the cache)
    entries: tuple[Entry, ...]  # one per good file, in path order
    problems: tuple[Problem, ...]  # skipped files and warnings, in path order
    listing: Listing  # the listing read, with every file's stat signature (see completed)
    time_sensitive: bool = False  # some file was judged against the clock (see Entry.recheck)
    unsaved: tuple[FileRow, ...] = ()  # cache rows left for the caller to store (defer_rows)


def index_archive(config: Config, cache: Cache, now: datetime, listing: Listing,
                  progress: Progress | None = None, defer_rows: bool = False,
                  meanwhile: Callable[[], None] | None = None) -> ArchiveIndex:
    """The first pass over every file the cache does not know; the others' entries come
    from the cache. With defer_rows, the last new cache rows (fewer than twice
    ROWS_PER_INSERT: all of them for a small archive) are returned in `unsaved` rather
    than stored, for the caller to store when it suits it (pipeline.py: while workers
    parse articles). `meanwhile`: see workers.run_batches. A listing made without stat
    signatures (list_archive) is completed with those of the files as they were read."""
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

    fresh: list[FileRow] = []
    time_sensitive = False
    parsed = 0  # (fewer than todo when some file listed without its stat was gone)
    # A listing without stat signatures puts every file in `todo` (no cached record has
    # an UNKNOWN size), and the first pass gives them back in that order: each is added
    # to the listing's completion as it comes.
    completion = Completion(config) if not listing.has_stats else None
    for path, record, recheck, row in first_pass(config, todo, now, progress, meanwhile):
        records[path] = record
        parsed += 1
        if completion is not None:
            completion.add(path, record.size, record.mtime_ns)
        if recheck:
            time_sensitive = True
        else:
            fresh.append(row)
            # A batch is stored only while the workers have as many files still to read
            # (which takes them far longer than storing it takes this process): stored
            # as the pass ends, it would be waited for (25-40 ms at 5,000 rows, the other
            # core idle meanwhile).
            if len(fresh) >= ROWS_PER_INSERT and len(todo) - parsed >= ROWS_PER_INSERT:
                cache.put_files(fresh)  # the rows' text is not held for the whole archive
                fresh.clear()
    if not defer_rows:
        cache.put_files(fresh)
        fresh.clear()
    if completion is not None:
        listing = completion.listing()

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
    return ArchiveIndex(len(records), parsed, tuple(entries), tuple(problems), listing,
                        time_sensitive, tuple(fresh))


def first_pass(config: Config, todo: Sequence[tuple[str, int, int]], now: datetime,
               progress: Progress | None, meanwhile: Callable[[], None] | None = None
               ) -> Iterator[tuple[str, FileRecord, bool, FileRow]]:
    """(path, record, recheck, the record's cache row) for each file of `todo`; recheck
    marks an entry judged against the clock (a date "in the future"), which must not be
    cached: it may become plausible later."""
    site = config.site
    jobs = [(str(site.source), site.timezone, site.encodings, now, todo[i:i + CHUNK])
            for i in range(0, len(todo), CHUNK)]
    done = 0
    for number, chunk in enumerate(run_batches(_read_chunk, jobs, len(todo), meanwhile=meanwhile)):
        done += len(jobs[number][4])  # the job's files: one listed without stat may be gone
        if progress:
            progress(done, len(todo))
        for row, recheck in chunk:
            # Records travel from the workers as rows (plain strings and numbers, quick
            # to pass), and become records the way the cache's rows do.
            yield row[0], record_from_row(row), recheck, row


def _read_chunk(job: tuple[str, str, Sequence[str], datetime, Sequence[tuple[str, int, int]]]
                ) -> list[tuple[FileRow, bool]]:
    """Worker: the first pass over a few files, as (cache row, recheck) for each."""
    source, timezone, encodings, now, files = job
    zone = zoneinfo.ZoneInfo(timezone)
    out: list[tuple[FileRow, bool]] = []
    # Each file is opened relative to the source folder, open once: the kernel then
    # resolves one name, not every folder of the path (a third of the cost of opening).
    try:
        folder: int | None = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        folder = None  # each file's own open says why it cannot be read
    try:
        for path, size, mtime_ns in files:
            row = _first_pass_row(source, folder, path, size, mtime_ns, zone, encodings, now)
            if row is not None:
                out.append(row)
    finally:
        if folder is not None:
            os.close(folder)
    return out


def _first_pass_row(source: str, folder: int | None, path: str, size: int, mtime_ns: int,
                    zone: tzinfo, encodings: Sequence[str], now: datetime
                    ) -> tuple[FileRow, bool] | None:
    """One file's cache row and recheck mark; None for a file listed without its stat
    signature (UNKNOWN) that is gone: left out of the listing (listing.Completion)."""
    name, relative_to = (path, folder) if folder is not None else (os.path.join(source, path), None)
    try:
        if size == UNKNOWN:
            data, size, mtime_ns = read_unlisted(name, relative_to)
        else:
            data = read_file(name, size, relative_to)
        entry, _body = read_entry(data, path, zone=zone, encodings=encodings, now=now)
    except ArticleError as e:
        return file_row(path, size, mtime_ns, None, e.reason), False
    except OSError as e:
        if size == UNKNOWN:
            try:
                signature = os.stat(name, dir_fd=relative_to)
            except OSError:
                return None
            size, mtime_ns = signature.st_size, signature.st_mtime_ns
        return file_row(path, size, mtime_ns, None, f"cannot read: {e.strerror or e}"), True
    return file_row(path, size, mtime_ns, entry), entry.recheck


# O_NONBLOCK does nothing to a file; a named pipe left in the archive reads as empty
# instead of stopping the build until something writes to it.
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK


def read_file(path: str, size: int, folder: int | None = None) -> bytes:
    """The whole file, expected to be `size` bytes (from its listing) but read to its end
    whatever it holds now; `path` relative to the open folder `folder` when given.
    os.read costs half of what open().read() does, which counts when reading a whole
    archive."""
    descriptor = os.open(path, _OPEN_FLAGS, dir_fd=folder)
    try:
        return _read_to_end(descriptor, size)
    finally:
        os.close(descriptor)


def read_unlisted(path: str, folder: int | None = None) -> tuple[bytes, int, int]:
    """read_file for a file listed without its stat signature: its bytes, and its size
    and mtime_ns as the open file gives them."""
    descriptor = os.open(path, _OPEN_FLAGS, dir_fd=folder)
    try:
        signature = os.fstat(descriptor)
        return (_read_to_end(descriptor, signature.st_size), signature.st_size,
                signature.st_mtime_ns)
    finally:
        os.close(descriptor)


def _read_to_end(descriptor: int, size: int) -> bytes:
    data = os.read(descriptor, size + 1)
    if len(data) == size:
        return data  # the size expected, and nothing after it: no read to find the end
    chunks = [data]
    while chunk := os.read(descriptor, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
