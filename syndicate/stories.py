"""The archive as the feeds see it: one entry per story, newest first, with the ledger's
dates, each channel's selection, and the problems found reading it. Computed from the
file entries (index.py), merged and ordered (select.py), and kept in the cache between
runs as a snapshot keyed by the fingerprint of the archive's listing:

- no file changed since the last run (same fingerprint): the last result is reused; the
  channels' selections are kept apart, so the stories themselves are read only when
  something needs them all (a monthly archive, a channel the last run did not have);
- files were only added, as stories not seen before: only they are read, and merged
  into the last selections; the snapshot stores them as an addition. Such a run costs
  what was added plus the listing, not what the archive holds;
- a few files changed, removed or added, or new captures of known stories: only the
  new and changed files are read, and each story they held or hold now is merged again
  from all its captures (the cache's files table finds them by URL); the rest of the
  last result stays as it was, as the rows it is kept in (see StoryRows): only the
  stories the channels' selections read are made entries again;
- anything else (more than ADDITIONS_MAX files, or a change of the time zone or
  encodings the files are read in): all of it is computed again from the cached file
  entries, and files whose entries were dropped are read again.
"""

from __future__ import annotations

import bisect
import marshal
import pickle
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import partial
from itertools import chain
from typing import Any, overload

from syndicate.cache import Cache, FileRecord, FileRow, instant
from syndicate.errors import SyndicateError
from syndicate.index import Progress, first_pass, index_archive
from syndicate.listing import Listing
from syndicate.model import Channel, Config, Entry, Problem, entry_fields
from syndicate.select import apply_ledger, merge_captures, newest_first, select, story_order, wanted

SNAPSHOT_CHUNK = 5000  # stories per row of the cache's snapshot
ADDITIONS_MAX = 1000  # more new files than this: the full pass is about as cheap
ADDED_MAX = 2000  # stories kept apart from the snapshot's main list (see _Snapshot)


class Stories:
    """The stories of one build. `ordered()` is the whole archive, newest first, made on
    first use; `select(channel)` is the channel's items (select.select), from the kept
    selections when they are known."""

    def __init__(self, problems: tuple[Problem, ...], files: int, count: int, listing: Listing, *,
                 parsed: int = 0, time_sensitive: bool = False,
                 ordered: Callable[[], Sequence[Entry]],
                 selections: dict[str, list[Entry]] | None = None,
                 unsaved: Sequence[Callable[[], None]] = ()) -> None:
        self.problems = problems
        self.files = files  # candidate files seen
        self.count = count  # stories
        self.listing = listing  # the archive's files as read, with their stat signatures
        self.parsed = parsed  # files read this run
        self.time_sensitive = time_sensitive  # an entry was judged against the clock (Entry.recheck)
        self._make_ordered = ordered
        self._ordered: Sequence[Entry] | None = None
        self._selections = selections or {}
        self._unsaved = list(unsaved)  # see save()

    def save(self) -> None:
        """Store what read_stories left for later: after a full pass, the snapshot and the
        last batch of file rows. The build's main process does it while workers parse
        the feeds' articles (pipeline.py); the cache commits it with the rest of the
        build. Does nothing the second time."""
        while self._unsaved:
            self._unsaved.pop(0)()

    def ordered(self) -> Sequence[Entry]:
        if self._ordered is None:
            self._ordered = self._make_ordered()
        return self._ordered

    def select(self, channel: Channel) -> list[Entry]:
        kept = self._selections.get(selection_key(channel))
        return list(kept) if kept is not None else select(self.ordered(), channel)


class DamagedSnapshot(SyndicateError):
    """The snapshot's stories could not be read when they were needed (before anything
    was written): build.py forgets the snapshot and runs the build again."""


def selection_key(channel: Channel) -> str:
    """What select.select reads of a channel."""
    return repr((channel.include, channel.exclude, channel.limit))


def read_stories(config: Config, cache: Cache, now: datetime, listing: Listing,
                 progress: Progress | None, meanwhile: Callable[[], None] | None = None
                 ) -> tuple[Stories, list[Entry]]:
    """Index, merge, hold to the ledger, order (see the module docstring). Returns the
    stories and the entries whose ledger rows are new or changed (for Cache.put_ledger).
    What the cache is to keep of a full pass is stored by Stories.save(). `meanwhile`:
    called while a full pass's workers read the files, if they do (workers.run_batches)."""
    fingerprint = cache.snapshot_fingerprint()
    # (A listing without stat signatures is a build's that reads every file: no snapshot.)
    previous = (_Snapshot.load(cache) if fingerprint is not None and listing.has_stats
                else None)
    if previous is not None and fingerprint == listing.fingerprint:
        return Stories(previous.problems, len(listing.files), previous.count, listing,
                       ordered=previous.ordered, selections=previous.selections), []
    read_already = 0  # files read by a path that then gave way to another
    if previous is not None:
        grown = _add_new_stories(config, cache, now, progress, listing, previous)
        if not isinstance(grown, int):
            return grown
        read_already = grown
        changed = _change_stories(config, cache, now, progress, listing, previous,
                                  read_already)
        if changed is not None:
            return changed
    index = index_archive(config, cache, now, listing, progress, defer_rows=True,
                          meanwhile=meanwhile)
    listing = index.listing  # with every file's stat signature
    merged = merge_captures(index.entries)
    entries, ledger_changes = apply_ledger(merged.entries, cache.ledger())
    problems = index.problems + tuple(
        Problem(str(config.site.source / path), message, skipped=False)
        for path, message in merged.warnings)
    ordered = newest_first(entries)
    problems = _by_file(problems)
    unsaved = [partial(cache.put_files, list(index.unsaved))]
    if index.time_sensitive:
        _Snapshot.forget(cache)
    else:
        unsaved.append(partial(_Snapshot.store, cache, listing, config, ordered, problems))
    stories = Stories(problems, index.files, len(ordered), listing,
                      parsed=index.parsed + read_already,
                      time_sensitive=index.time_sensitive, ordered=lambda: ordered,
                      unsaved=unsaved)
    return stories, ledger_changes


def _add_new_stories(config: Config, cache: Cache, now: datetime, progress: Progress | None,
                     listing: Listing, previous: _Snapshot
                     ) -> tuple[Stories, list[Entry]] | int:
    """The last result plus the stories in files added since; when the change is not only
    that (see the module docstring), how many files it read before it could tell (their
    entries are in the cache for the path that takes over)."""
    added = added_files(previous.files(), listing.files)
    if added is None:
        return 0  # a file changed, or was removed or renamed
    if not added or len(added) > ADDITIONS_MAX:
        return 0  # so many new files that the full pass is about as cheap
    site = config.site
    entries: list[Entry] = []
    problems: list[Problem] = []
    fresh: list[FileRow] = []
    time_sensitive = False
    for path, record, recheck, row in first_pass(config, added, now, progress):
        time_sensitive = time_sensitive or recheck
        if not recheck:
            fresh.append(row)
        shown = str(site.source / path)
        if record.entry is None:
            problems.append(Problem(shown, record.skip_reason, skipped=True))
            continue
        entries.append(record.entry)
        problems.extend(Problem(shown, w, skipped=False) for w in record.entry.warnings)
        if record.entry.disagreement:  # a first capture, as merge_captures would say
            problems.append(Problem(shown, record.entry.disagreement, skipped=False))
    cache.put_files(fresh)  # kept even if we fall back: the next path finds them cached
    urls = {entry.url for entry in entries}
    if len(urls) < len(entries) or not urls.isdisjoint(previous.urls()):
        return len(added)  # a new capture of a story: merging needs its other captures
    entries, ledger_changes = apply_ledger(entries, cache.ledger_for(sorted(urls)))

    def ordered() -> StoryRows:
        rows = previous.rows()
        for entry in entries:
            bisect.insort(rows, _row(entry), key=_row_order)
        return StoryRows(rows)

    selections: dict[str, list[Entry]] = {}
    for channel in config.channels:
        key = selection_key(channel)
        before = previous.selections.get(key)
        if before is not None:  # the newest `limit` of before and the new: see select.select
            selections[key] = sorted(before + [e for e in entries if wanted(e, channel)],
                                     key=story_order)[:channel.limit]
    stories = Stories(_by_file(previous.problems + tuple(problems)), len(listing.files),
                      previous.count + len(entries), listing, parsed=len(added),
                      time_sensitive=time_sensitive, ordered=ordered, selections=selections)
    if time_sensitive:
        _Snapshot.forget(cache)
    elif previous.added_stories + len(entries) > ADDED_MAX or len(selections) < len(config.channels):
        _Snapshot.store(cache, listing, config, stories.ordered(), stories.problems)
    else:
        previous.store_added(cache, listing, config, stories, entries)
    return stories, ledger_changes


def _change_stories(config: Config, cache: Cache, now: datetime, progress: Progress | None,
                    listing: Listing, previous: _Snapshot, read_already: int = 0
                    ) -> tuple[Stories, list[Entry]] | None:
    """The last result with the stories of the files changed, removed or added since
    computed again, each from all its captures, as the full pass would; None when more
    than ADDITIONS_MAX files changed, or the cache lacks a file's last record. Reads the
    new and changed files only; the last run's stories stay rows, made entries only as
    the selections read them (StoryRows). `read_already`: files this run read before
    (_add_new_stories), whose entries the cache now holds."""
    site = config.site
    # (path, size, mtime_ns): a changed file is in both differences, with its old and
    # its new signature. Sets, since the listings of a large archive are long.
    listed = set(listing.files)
    known = set(previous.files())
    gone_files, new_files = known - listed, listed - known
    del known
    before = {path: (size, mtime_ns) for path, size, mtime_ns in gone_files}
    gone = sorted(before)  # removed, renamed or changed
    new = sorted(new_files)  # added, renamed or changed
    listed_again = {path for path, _size, _mtime_ns in new_files}  # of `gone`: changed
    if (not gone and not new) or len(gone) + len(new) > ADDITIONS_MAX:
        # (No file changed: the listing's fingerprint did for another reason, such as
        # the time zone the files are read in. The full pass reads them all again.)
        return None
    old = cache.file_records(gone)
    if any((old[path].size, old[path].mtime_ns) != before[path] if path in old else True
           for path in gone):
        return None  # the cache's records are not those the snapshot was made from
    # Before any write: rows of the wrong shape are raised here, rows with values that
    # cannot be read when ordering or selecting reads them (still before any write).
    kept = previous.rows()

    # The new and changed files: read, unless this run already did (_add_new_stories
    # stores the new files it read). A changed file's record is `old`, which is stale.
    records: dict[str, FileRecord] = {}
    cached = cache.file_records([path for path, _size, _mtime in new if path not in before])
    todo = []
    for path, size, mtime_ns in new:
        record = cached.get(path)
        if record is not None and (record.size, record.mtime_ns) == (size, mtime_ns):
            records[path] = record
        else:
            todo.append((path, size, mtime_ns))
    fresh: list[FileRow] = []
    time_sensitive = False
    for path, record, recheck, row in first_pass(config, todo, now, progress):
        records[path] = record
        time_sensitive = time_sensitive or recheck
        if not recheck:
            fresh.append(row)
    cache.forget_files([path for path in gone if path not in listed_again])
    cache.put_files(fresh)

    # Every capture of every story these files held or hold now, merged again.
    urls = {record.entry.url for record in (*old.values(), *records.values())
            if record.entry is not None}
    # (A cached record counts for a file listed as it was recorded, as in index_archive.)
    captures = {path: record.entry for path, record in cache.captures(sorted(urls)).items()
                if (path, record.size, record.mtime_ns) in listed and record.entry}
    captures.update((path, record.entry) for path, record in records.items() if record.entry)
    merged = merge_captures(captures[path] for path in sorted(captures))
    entries, ledger_changes = apply_ledger(merged.entries, cache.ledger_for(sorted(urls)))
    # The other stories stay the rows they are kept as (StoryRows).
    rows = [row for row in kept if row[1] not in urls]
    for entry in entries:
        bisect.insort(rows, _row(entry), key=_row_order)
    ordered = StoryRows(rows)

    # The problems of every file looked at again are found again, as index_archive and
    # read_stories would: each file's own, then the story's merge warning.
    touched = {str(site.source / path) for path in (*gone, *records, *captures)}
    problems = [problem for problem in previous.problems if problem.path not in touched]
    for path in sorted({*records, *captures}):
        shown = str(site.source / path)
        capture = captures.get(path)
        if capture is None:
            problems.append(Problem(shown, records[path].skip_reason, skipped=True))
        else:
            problems.extend(Problem(shown, w, skipped=False) for w in capture.warnings)
    problems.extend(Problem(str(site.source / path), message, skipped=False)
                    for path, message in merged.warnings)
    kept_problems = _by_file(problems)
    unsaved = [partial(_Snapshot.forget, cache) if time_sensitive else
               partial(_Snapshot.store, cache, listing, config, ordered, kept_problems)]
    stories = Stories(kept_problems, len(listing.files), len(ordered), listing,
                      parsed=len(todo) + read_already,
                      time_sensitive=time_sensitive, ordered=lambda: ordered, unsaved=unsaved)
    return stories, ledger_changes


def added_files(before: Sequence[tuple[str, int, int]], now: Sequence[tuple[str, int, int]]
                ) -> list[tuple[str, int, int]] | None:
    """The files of listing `now` that listing `before` lacks, or None when some file of
    `before` is not in `now` as it was (changed, removed, renamed). Both are in scan order
    (listing.scan), which is the same for the same files and which new files do not
    disturb, so one walk tells; it costs less than the sets would."""
    added: list[tuple[str, int, int]] = []
    matched = 0
    for file in now:
        if matched < len(before) and file == before[matched]:
            matched += 1
        else:
            added.append(file)
    return added if matched == len(before) else None


def _by_file(problems: Sequence[Problem]) -> tuple[Problem, ...]:
    """Problems in file order (stable: a file's own come in the order they were found)."""
    return tuple(sorted(problems, key=lambda problem: problem.path))


class _Snapshot:
    """The last run's stories as kept in the cache, with the listing they came from.

    Each part is a row of its own in the cache, read only when used: the head (problems,
    each channel's selection keyed by selection_key, counts), the listing (for the
    additions-only path), the stories' URLs (to tell a new story from a new capture), and
    the stories themselves, in chunks: CHUNKS holds one newest-first list cut in pieces,
    ADDED the stories of the additions-only runs since (each chunk in story order), which
    ordered() inserts in their places. An additions-only run thus writes what it added,
    not the whole archive again; past ADDED_MAX added stories, everything is stored as
    one list again."""

    HEAD, LISTING, URLS, CHUNKS, ADDED = 0, 1, 2, 100, 1_000_000  # part numbers

    def __init__(self, cache: Cache, head: tuple[Any, ...]) -> None:
        self.cache = cache
        problems, selections, count, chunks, added_chunks, added_stories = head
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.selections: dict[str, list[Entry]] = selections
        self.count: int = count
        self.chunks: int = chunks
        self.added_chunks: int = added_chunks
        self.added_stories: int = added_stories
        self._urls: list[str] | None = None
        self._files: tuple[tuple[str, int, int], ...] | None = None

    @staticmethod
    def load(cache: Cache) -> _Snapshot | None:
        """None when the snapshot's head is unreadable (it is computed again). The cache
        is the site's own local state, trusted like its config; wrong types are still
        refused."""
        try:
            snapshot = _Snapshot(cache, pickle.loads(cache.snapshot_part(_Snapshot.HEAD) or b""))
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError,
                ValueError, IndexError):
            return None
        if not (isinstance(snapshot.selections, dict)
                and all(isinstance(e, Entry) for chosen in snapshot.selections.values()
                        for e in chosen)
                and all(isinstance(p, Problem) for p in snapshot.problems)
                and all(isinstance(n, int) for n in (snapshot.count, snapshot.chunks,
                                                     snapshot.added_chunks,
                                                     snapshot.added_stories))):
            return None
        return snapshot

    def _part(self, part: int) -> Any:
        """A part other than the head, as marshal.dumps made it."""
        try:
            return marshal.loads(self.cache.snapshot_part(part) or b"")
        except (EOFError, TypeError, ValueError) as e:
            raise _damaged() from e

    def files(self) -> tuple[tuple[str, int, int], ...]:
        """The listing's (path, size, mtime_ns) of every file, in scan order."""
        if self._files is None:
            self._files = tuple(self._part(self.LISTING))
        return self._files

    def urls(self) -> list[str]:
        if self._urls is None:
            self._urls = list(self._part(self.URLS))
        return self._urls

    def ordered(self) -> StoryRows:
        """The stories, read now (load() read only the head)."""
        return StoryRows(self.rows())

    def rows(self) -> list[tuple[Any, ...]]:
        """The stories' rows (see _row), newest first, read now. Each row is checked for
        its shape here, before anything is written; its values when it is read."""
        rows = [row for n in range(self.chunks) for row in self._part(self.CHUNKS + n)]
        later = [row for n in range(self.added_chunks) for row in self._part(self.ADDED + n)]
        if not all(type(row) is tuple and len(row) == _ROW_FIELDS for row in chain(rows, later)):
            raise _damaged()
        for row in later:
            bisect.insort(rows, row, key=_row_order)
        return rows

    @staticmethod
    def forget(cache: Cache) -> None:
        """A result that depends on the clock (a date judged "in the future") is not kept."""
        cache.forget_snapshot()

    @staticmethod
    def store(cache: Cache, listing: Listing, config: Config, ordered: Sequence[Entry],
              problems: tuple[Problem, ...]) -> None:
        """The ledger rows of this run are recorded with it, so reusing it is what a full
        run would compute again (holding entries to their own ledger rows changes
        nothing). Stored in chunks, each its own row, so that a large archive's stories
        are not held twice over, as objects and as one blob, while they are written.
        Stories held as rows (StoryRows) are stored as the rows they are."""
        chunks = range(0, len(ordered), SNAPSHOT_CHUNK)
        head = (problems, {selection_key(c): select(ordered, c) for c in config.channels},
                len(ordered), len(chunks), 0, 0)
        rows = ordered.rows if isinstance(ordered, StoryRows) else None
        cache.put_snapshot(listing.fingerprint, {
            _Snapshot.HEAD: pickle.dumps(head, protocol=5),
            _Snapshot.LISTING: marshal.dumps(listing.files),
            _Snapshot.URLS: marshal.dumps([row[1] for row in rows] if rows is not None
                                          else [e.url for e in ordered])})
        for n, start in enumerate(chunks):
            end = start + SNAPSHOT_CHUNK
            cache.put_snapshot(listing.fingerprint, {_Snapshot.CHUNKS + n: marshal.dumps(
                rows[start:end] if rows is not None else [_row(e) for e in ordered[start:end]])},
                keep=True)

    def store_added(self, cache: Cache, listing: Listing, config: Config, stories: Stories,
                    added: list[Entry]) -> None:
        """Store `stories`, which are these plus `added` (see the class docstring): the
        parts of the stories already kept stay as they are."""
        head = (stories.problems, {selection_key(c): stories.select(c) for c in config.channels},
                stories.count, self.chunks, self.added_chunks + 1,
                self.added_stories + len(added))
        cache.put_snapshot(listing.fingerprint, {
            self.HEAD: pickle.dumps(head, protocol=5),
            self.LISTING: marshal.dumps(listing.files),
            self.URLS: marshal.dumps(self.urls() + [e.url for e in added]),
            self.ADDED + self.added_chunks: marshal.dumps(
                [_row(entry) for entry in sorted(added, key=story_order)])}, keep=True)


# The snapshot's stories are kept as rows of plain values (marshal), not pickled Entry
# objects: storing a large archive's stories is half of what pickling them cost, and
# every full pass does it. Dates are POSIX timestamps, as in the cache's tables (see
# cache.instant); a row's published timestamp is the one story_order sorts by.

def _row(entry: Entry) -> tuple[Any, ...]:
    (path, url, title, published, captured, source_time, authors, section, content_hash,
     warnings, disagreement, updated, recheck) = entry_fields(entry)
    return (path, url, title, published.timestamp(),
            None if captured == published else captured.timestamp(),
            source_time.timestamp() if source_time else None, authors, section, content_hash,
            warnings, disagreement, updated.timestamp() if updated else None, recheck)


_ROW_FIELDS = 13


def _row_order(row: tuple[Any, ...]) -> tuple[float, str]:
    """select.story_order of the row's entry, without making the entry."""
    published = row[3]
    if not isinstance(published, float):
        raise _damaged()
    return (-published, row[1])


def _damaged() -> DamagedSnapshot:
    return DamagedSnapshot("the cache's snapshot of the archive's stories is damaged")


def _entry(row: tuple[Any, ...]) -> Entry:
    (path, url, title, published, captured, source_time, authors, section, content_hash,
     warnings, disagreement, updated, recheck) = row
    published_at = instant(published)
    return Entry(path, url, title, published_at,
                 published_at if captured is None else instant(captured),
                 None if source_time is None else instant(source_time), authors,
                 section, content_hash, warnings, disagreement,
                 None if updated is None else instant(updated), recheck)


class StoryRows(Sequence[Entry]):
    """Stories newest first, held as the snapshot's rows and made entries only as they
    are read (each once). A channel's selection reads the newest few hundred; a run that
    changed a few files of a large archive stores the others back as the rows they were.
    Making all of them entries and rows again cost 100,000 stories a second."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self._made: list[Entry | None] = [None] * len(rows)

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> Entry: ...

    @overload
    def __getitem__(self, index: slice) -> list[Entry]: ...

    def __getitem__(self, index: int | slice) -> Entry | list[Entry]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self.rows)))]
        entry = self._made[index]
        if entry is None:
            try:
                entry = self._made[index] = _entry(self.rows[index])
            except (TypeError, ValueError, OverflowError, OSError) as e:
                raise _damaged() from e
        return entry

    def __iter__(self) -> Iterator[Entry]:
        for index in range(len(self.rows)):
            yield self[index]
