"""Incremental state between runs, in one SQLite file (`<site.cache>/state.sqlite`).

- files: each article file's stat signature and what the first pass made of it (the
  entry, or why it was skipped), so an unchanged file is never read again;
- ledger: for each article URL, the content hash and dates readers were given, so a
  story's `updated` moves only when its content changes and `published` never moves
  later, even when the file holding its first capture is replaced or removed;
- feeds: for each output file, a digest of everything that went into it and the stat
  signature it was left with, so an unchanged feed is neither rendered nor written;
- builds: when each channel was last built, which `build --due` compares with the
  channel's schedule (a lost cache makes every channel due once);
- archives: for each monthly archive document, the digest of its inputs, how many items
  it holds and the stat signature of each of its parts, as `feeds` does for feeds;
- probes: what each enclosure URL answered (byte length and type, or why not), so an
  image is asked about once, and a failure again only after a week;
- pings: feeds whose WebSub notification failed, to send again after the next build;
- articles: the second pass's full article (pickled) for each story that a feed or page
  of the last build carried, keyed by its entry, so that a small change re-renders the
  channels it touches without parsing their other articles again;
- outcome: the last build's inputs (a key), the stat signatures of every output file it
  left, and its report, so that a run that finds all of these unchanged does nothing
  (build.py).

The cache is only an accelerator: a build with it gives the same bytes as one without
(`--no-cache`). A cache that is corrupt, from another version or not ours is thrown
away and rebuilt, with a one-line notice.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syndicate.model import Entry, Stamp

SCHEMA = 11  # bump when the tables or the meaning of a record change
FILE_NAME = "state.sqlite"


# Instants (an entry's dates, the ledger's) are stored as POSIX timestamps, not ISO text:
# datetime.isoformat costs 2.5 µs, timestamp() 0.4, and a cold build stores some seven
# dates per story (a fifth of a second of CPU at 10,000 stories). A double holds every
# microsecond exactly until 2106 (half its spacing there is 0.24 µs), and fromtimestamp
# rounds to the nearest microsecond, so a date comes back as it went in (as UTC: the
# <time> value's own offset is not kept; nothing shows it). Dates outside 1990 to the
# day after the build are refused by the parser (parse._plausible) before they get here.

def instant(timestamp: float) -> datetime:
    """The aware UTC datetime a stored timestamp holds. TypeError, ValueError,
    OverflowError or OSError for a value that is none (a damaged cache)."""
    return datetime.fromtimestamp(timestamp, UTC)


@dataclass(frozen=True, slots=True)
class FileRecord:
    size: int
    mtime_ns: int
    entry: Entry | None  # None: the file gave no article
    skip_reason: str = ""


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    digest: str  # of everything the month's document depends on
    items: int  # how many items it holds, for shrink protection
    parts: tuple[tuple[int, int], ...]  # (size, mtime_ns) of each part file, in order


@dataclass(frozen=True, slots=True)
class ProbeRecord:
    length: int  # bytes; 0 when unknown
    mime: str  # the type the server gave; "" to keep the one from the file name
    error: str  # "" when the length is known, else why not
    checked: datetime  # when it was asked (aware UTC)


class Cache:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, folder: Path | None, settings: str) -> tuple[Cache, str | None]:
        """Open (or create) the cache. `settings` fingerprints what parsing depends on
        (time zone, encodings, syndicate's version): when it differs, the file records are
        dropped. Returns the cache and a notice when it had to be rebuilt. With no folder,
        an in-memory cache that is forgotten after the run (--no-cache)."""
        if folder is None:
            return cls(_connect(":memory:", settings)), None
        path = folder / FILE_NAME
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return cls(_connect(str(path), settings)), None
        except _OtherVersion as e:
            return cls.rebuilt(folder, settings, str(e))
        except sqlite3.DatabaseError as e:
            # A cache that cannot be opened at all (a folder in its place, a read-only
            # disk) is not damaged: deleting it would lose its ledger for nothing.
            if not damaged(e):
                raise
            return cls.rebuilt(folder, settings, str(e))

    @classmethod
    def rebuilt(cls, folder: Path, settings: str, reason: str) -> tuple[Cache, str]:
        """A new, empty cache in place of an unusable one (damaged, foreign, another
        version's), and the notice that says so. Everything in it can be rebuilt from
        the archive except the ledger (what readers were told), which is carried over
        when it can still be read."""
        path = folder / FILE_NAME
        kept = _old_ledger(path)
        with contextlib.suppress(OSError):
            path.unlink()
        cache = cls(_connect(str(path), settings))
        if kept:  # no longer a cache with nothing to lose (see _connect)
            cache._db.execute("PRAGMA synchronous = FULL")
        cache._db.executemany("INSERT OR REPLACE INTO ledger VALUES (?, ?, ?, ?)", kept)
        cache.commit()
        carried = f", keeping its ledger of {len(kept)} stories" if kept else ""
        return cache, f"{path}: cache unusable ({reason}); rebuilt from the archive{carried}"

    # --- files ---------------------------------------------------------------------------

    def file_count(self) -> int:
        """How many files' records are kept (none: a build reads every file)."""
        return int(self._db.execute("SELECT count(*) FROM files").fetchone()[0])

    def files(self) -> dict[str, FileRecord]:
        return {row[0]: record_from_row(row)
                for row in self._db.execute(f"SELECT {_FILE_COLUMNS} FROM files")}

    def put_files(self, rows: list[FileRow]) -> None:
        """Store file records as file_row made them (the first pass's workers do)."""
        self._db.executemany(
            f"INSERT OR REPLACE INTO files ({_FILE_COLUMNS}) VALUES ({', '.join('?' * 14)})", rows)

    def file_records(self, paths: Sequence[str]) -> dict[str, FileRecord]:
        """The records of these paths, those the cache has."""
        return self._file_rows_where("path", paths)

    def captures(self, urls: Sequence[str]) -> dict[str, FileRecord]:
        """path → record of every file whose entry has one of these URLs: all the
        captures of these stories that the archive holds."""
        return self._file_rows_where("url", urls)

    def _file_rows_where(self, column: str, values: Sequence[str]) -> dict[str, FileRecord]:
        found: dict[str, FileRecord] = {}
        for start in range(0, len(values), 500):  # SQLite limits the number of parameters
            batch = list(values[start:start + 500])
            found.update((row[0], record_from_row(row)) for row in self._db.execute(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE {column} IN "
                f"({', '.join('?' * len(batch))})", batch))
        return found

    def forget_files(self, paths: list[str]) -> None:
        self._db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])

    # --- ledger ----------------------------------------------------------------------------

    def ledger(self) -> dict[str, Stamp]:
        """url → what readers were last told of it: content hash, published, updated."""
        return {url: Stamp(content_hash, instant(published), instant(updated))
                for url, content_hash, published, updated
                in self._db.execute("SELECT url, content_hash, published, updated FROM ledger")}

    def ledger_for(self, urls: Sequence[str]) -> dict[str, Stamp]:
        """The ledger rows of these URLs only (a few new stories in a large archive)."""
        found: dict[str, Stamp] = {}
        for start in range(0, len(urls), 500):
            batch = list(urls[start:start + 500])
            for url, content_hash, published, updated in self._db.execute(
                    "SELECT url, content_hash, published, updated FROM ledger WHERE url IN "
                    f"({', '.join('?' * len(batch))})", batch):
                found[url] = Stamp(content_hash, instant(published), instant(updated))
        return found

    def put_ledger(self, entries: list[Entry]) -> None:
        """Record what readers are now told of these stories: the entries as
        select.apply_ledger returned them, whose dates are held to the ledger."""
        # A generator: the rows' text is made as SQLite takes it, never held all at once.
        self._db.executemany("INSERT OR REPLACE INTO ledger VALUES (?, ?, ?, ?)", (
            (e.url, e.content_hash, e.published.timestamp(), (e.updated or e.captured).timestamp())
            for e in entries))

    # --- snapshot --------------------------------------------------------------------------

    def snapshot_fingerprint(self) -> str | None:
        """The fingerprint of the archive's listing the last run's stories (stored by
        stories.py, in parts) were made from; None when there is no snapshot. The cache
        is the site's own local state, trusted like its config."""
        row = self._db.execute("SELECT fingerprint FROM snapshot WHERE part = 0").fetchone()
        return str(row[0]) if row else None

    def snapshot_part(self, part: int) -> bytes | None:
        row = self._db.execute("SELECT data FROM snapshot WHERE part = ?", (part,)).fetchone()
        return bytes(row[0]) if row else None

    def put_snapshot(self, fingerprint: str, parts: dict[int, bytes], keep: bool = False) -> None:
        """Store these parts of the snapshot; with `keep`, the other parts stay (a snapshot
        extended in place), else they go. The fingerprint is kept with part 0 only (the
        head, which every store writes): rewriting it beside the stories' chunks would
        rewrite the chunks."""
        if not keep:
            self._db.execute("DELETE FROM snapshot")
        self._db.executemany("INSERT OR REPLACE INTO snapshot VALUES (?, ?, ?)",
                             [(part, fingerprint if part == 0 else "", data)
                              for part, data in parts.items()])

    def forget_snapshot(self) -> None:
        self._db.execute("DELETE FROM snapshot")

    # --- articles ------------------------------------------------------------------------

    def articles(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The pickled articles kept under these keys (pipeline._ArticleLoader's)."""
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), 500):  # SQLite limits the number of parameters
            batch = list(keys[start:start + 500])
            found.update((str(key), bytes(data)) for key, data in self._db.execute(
                f"SELECT key, data FROM articles WHERE key IN ({', '.join('?' * len(batch))})",
                batch))
        return found

    def put_articles(self, rows: list[tuple[str, bytes]]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO articles VALUES (?, ?)", rows)

    def keep_articles(self, keys: set[str]) -> None:
        """Forget every kept article but these."""
        gone = [(key,) for (key,) in self._db.execute("SELECT key FROM articles")
                if key not in keys]
        self._db.executemany("DELETE FROM articles WHERE key = ?", gone)

    # --- outcome -------------------------------------------------------------------------

    def outcome(self) -> tuple[str, bytes] | None:
        """The key of the last build's inputs and what build.py kept of its result."""
        row = self._db.execute("SELECT key, data FROM outcome").fetchone()
        return (str(row[0]), bytes(row[1])) if row else None

    def put_outcome(self, key: str, data: bytes) -> None:
        self._db.execute("DELETE FROM outcome")
        self._db.execute("INSERT INTO outcome VALUES (?, ?)", (key, data))

    def forget_outcome(self) -> None:
        self._db.execute("DELETE FROM outcome")

    # --- feeds ---------------------------------------------------------------------------

    def feed(self, name: str) -> tuple[str, int, int, int] | None:
        """(digest, size, mtime_ns, items dropped for size) of the feed as last written."""
        row = self._db.execute("SELECT digest, size, mtime_ns, dropped FROM feeds WHERE name = ?",
                               (name,)).fetchone()
        return (str(row[0]), int(row[1]), int(row[2]), int(row[3])) if row else None

    def put_feed(self, name: str, digest: str, size: int, mtime_ns: int, dropped: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO feeds VALUES (?, ?, ?, ?, ?)",
                         (name, digest, size, mtime_ns, dropped))

    # --- builds --------------------------------------------------------------------------

    def builds(self) -> dict[str, datetime]:
        """Channel id → when it was last built (aware UTC)."""
        return {str(channel): datetime.fromisoformat(built)
                for channel, built in self._db.execute("SELECT channel, built FROM builds")}

    def put_build(self, channel: str, built: datetime) -> None:
        self._db.execute("INSERT OR REPLACE INTO builds VALUES (?, ?)", (channel, built.isoformat()))

    # --- archives ------------------------------------------------------------------------

    def archive(self, name: str) -> ArchiveRecord | None:
        """The record of a monthly archive, named by its first part (`world/2024-05.xml`)."""
        row = self._db.execute("SELECT digest, items, parts FROM archives WHERE name = ?",
                               (name,)).fetchone()
        if not row:
            return None
        parts = tuple((int(size), int(mtime)) for size, mtime
                      in (part.split(":") for part in str(row[2]).split(",") if part))
        return ArchiveRecord(str(row[0]), int(row[1]), parts)

    def put_archive(self, name: str, record: ArchiveRecord) -> None:
        parts = ",".join(f"{size}:{mtime}" for size, mtime in record.parts)
        self._db.execute("INSERT OR REPLACE INTO archives VALUES (?, ?, ?, ?)",
                         (name, record.digest, record.items, parts))

    # --- probes --------------------------------------------------------------------------

    def probes(self, urls: list[str]) -> dict[str, ProbeRecord]:
        """What is known of these enclosure URLs (those never asked are left out)."""
        found: dict[str, ProbeRecord] = {}
        for i in range(0, len(urls), 500):  # SQLite limits the number of parameters
            chunk = urls[i:i + 500]
            for url, length, mime, error, checked in self._db.execute(
                    "SELECT url, length, mime, error, checked FROM probes WHERE url IN "
                    f"({', '.join('?' * len(chunk))})", chunk):
                found[url] = ProbeRecord(int(length), mime, error, datetime.fromisoformat(checked))
        return found

    def put_probes(self, records: list[tuple[str, ProbeRecord]]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO probes VALUES (?, ?, ?, ?, ?)",
                             [(url, r.length, r.mime, r.error, r.checked.isoformat())
                              for url, r in records])

    # --- pings ---------------------------------------------------------------------------

    def pending_pings(self) -> list[str]:
        """Feed URLs whose WebSub notification has not gone through yet."""
        return [str(row[0]) for row in self._db.execute("SELECT url FROM pings ORDER BY url")]

    def set_pending_pings(self, urls: list[str]) -> None:
        self._db.execute("DELETE FROM pings")
        self._db.executemany("INSERT OR REPLACE INTO pings VALUES (?)", [(url,) for url in urls])

    def commit(self) -> None:
        self._db.commit()

    def close(self) -> None:
        self._db.close()


def damaged(error: sqlite3.DatabaseError) -> bool:
    """Whether SQLite found the file damaged or not a database at all (its primary
    error codes SQLITE_CORRUPT and SQLITE_NOTADB), rather than unopenable or full: what
    Cache.rebuilt is for, on opening the cache or in the middle of a build (build.py)."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF  # (the extended code's primary part)
    return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


class _OtherVersion(Exception):
    pass


def _old_ledger(path: Path) -> list[tuple[str, str, float, float]]:
    """The ledger rows of an unusable cache (another version's, or damaged), if it has a
    readable one: all of them, or none. Versions before schema 11 kept the dates as ISO
    text, later ones as timestamps."""
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            rows = db.execute("SELECT url, content_hash, published, updated FROM ledger")
            return [(str(url), str(content_hash), _old_instant(published).timestamp(),
                     _old_instant(updated).timestamp())
                    for url, content_hash, published, updated in rows]
    except (sqlite3.DatabaseError, TypeError, ValueError, OverflowError, OSError):
        return []


def _old_instant(value: object) -> datetime:
    if isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:  # every version wrote aware dates: this is not one
            raise ValueError(f"not an aware ISO 8601 date: {value!r}")
        return moment
    if isinstance(value, (int, float)):
        return instant(value)
    raise TypeError(f"not a stored date: {value!r}")


def _connect(target: str, settings: str) -> sqlite3.Connection:
    db = sqlite3.connect(target)
    # A cold build of a large archive inserts hundreds of thousands of rows in one
    # transaction: with SQLite's default 2 MB of page cache they spill to disk midway.
    # (More would be faster still, but counts in the build's peak memory.)
    db.execute("PRAGMA cache_size = -16384")  # KiB
    try:
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if version is None and tables - {"meta"}:
            raise _OtherVersion("not a syndicate cache")
        if version is not None and version[0] != str(SCHEMA):
            raise _OtherVersion(f"schema {version[0]}, this syndicate uses {SCHEMA}")
        if version is not None and db.execute("SELECT value FROM meta WHERE key = 'settings'"
                                              ).fetchone() == (settings,):
            return db  # set up by an earlier run with these settings: no write needed
        if version is None:
            # A new cache holds nothing yet that a build could not make again: until it
            # has been written once, losing it to a power cut loses nothing, and a
            # damaged cache is rebuilt (Cache.rebuilt, on opening or in the middle of a
            # build). So this run does not wait for the disk at each commit (a first 10k
            # build's last commit: 22 ms -> 9 ms). Later runs, whose cache holds the
            # ledger of what readers were told, do.
            db.execute("PRAGMA synchronous = OFF")
        # One transaction for the whole schema: outside one, sqlite3 runs each CREATE
        # TABLE in a transaction of its own, each synced to disk (four fsyncs apiece:
        # 9 ms of a first build's start, one core, the workers not yet started).
        db.execute("BEGIN")
        db.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, "
                   "mtime_ns INTEGER, skip TEXT, url TEXT, title TEXT, published REAL, "
                   "captured REAL, source_time REAL, authors TEXT, section TEXT, "
                   "content_hash TEXT, warnings TEXT, disagreement TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS feeds (name TEXT PRIMARY KEY, digest TEXT, "
                   "size INTEGER, mtime_ns INTEGER, dropped INTEGER)")
        db.execute("CREATE TABLE IF NOT EXISTS snapshot (part INTEGER PRIMARY KEY, fingerprint TEXT, "
                   "data BLOB)")
        # Small rows looked up by URL: kept in the key's own b-tree (WITHOUT ROWID), which
        # makes inserting a cold 100k build's ledger 15-35% faster and the table a third
        # smaller. (The files table's rows are larger, and gain nothing from it.)
        db.execute("CREATE TABLE IF NOT EXISTS ledger (url TEXT PRIMARY KEY, content_hash TEXT, "
                   "published REAL, updated REAL) WITHOUT ROWID")
        db.execute("CREATE TABLE IF NOT EXISTS builds (channel TEXT PRIMARY KEY, built TEXT NOT NULL)")
        db.execute("CREATE TABLE IF NOT EXISTS archives (name TEXT PRIMARY KEY, digest TEXT, "
                   "items INTEGER, parts TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS probes (url TEXT PRIMARY KEY, length INTEGER, "
                   "mime TEXT, error TEXT, checked TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS pings (url TEXT PRIMARY KEY)")
        db.execute("CREATE TABLE IF NOT EXISTS outcome (key TEXT, data BLOB)")
        db.execute("CREATE TABLE IF NOT EXISTS articles (key TEXT PRIMARY KEY, data BLOB)")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
        known = db.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
        if known is None or known[0] != settings:
            db.execute("DELETE FROM files")
            db.execute("DELETE FROM articles")
            db.execute("DELETE FROM snapshot")  # made from the files' records
            db.execute("INSERT OR REPLACE INTO meta VALUES ('settings', ?)", (settings,))
        db.commit()
    except BaseException:
        db.close()
        raise
    return db


# Lists are stored joined by U+001F, which the parser never lets into text.
_SEP = "\x1f"
_FILE_COLUMNS = ("path, size, mtime_ns, skip, url, title, published, captured, source_time, "
                 "authors, section, content_hash, warnings, disagreement")


FileRow = tuple[Any, ...]  # a row of the files table, in _FILE_COLUMNS order


def file_row(path: str, size: int, mtime_ns: int, entry: Entry | None,
             skip_reason: str = "") -> FileRow:
    """The files table's row for a record (a FileRecord's fields): made where the record
    is (in the first pass's worker processes), so that storing a large archive's records
    costs the build's main process an insert only."""
    if entry is None:
        return (path, size, mtime_ns, skip_reason, *([None] * 10))
    return (path, size, mtime_ns, None, entry.url, entry.title,
            entry.published.timestamp(), entry.captured.timestamp(),
            entry.source_time.timestamp() if entry.source_time else None,
            _SEP.join(entry.authors), entry.section, entry.content_hash,
            _SEP.join(entry.warnings), entry.disagreement)


@functools.lru_cache(maxsize=4096)  # an archive's bylines repeat: one tuple each, shared
def _names(joined: str) -> tuple[str, ...]:
    return tuple(sys.intern(name) for name in joined.split(_SEP))


def record_from_row(row: FileRow) -> FileRecord:
    """The record a row holds (its dates in UTC: see instant)."""
    (path, size, mtime_ns, skip, url, title, published, captured, source_time, authors,
     section, content_hash, warnings, disagreement) = row
    if skip is not None:
        return FileRecord(size, mtime_ns, None, skip)
    published_at = instant(published)
    # A large archive holds a hundred thousand of these: values that repeat are shared.
    return FileRecord(size, mtime_ns, Entry(
        path=path, url=url, title=title,
        published=published_at,
        captured=published_at if captured == published else instant(captured),
        source_time=instant(source_time) if source_time is not None else None,
        authors=_names(authors) if authors else (),
        section=sys.intern(section), content_hash=content_hash,
        warnings=tuple(warnings.split(_SEP)) if warnings else (),
        disagreement=disagreement,
    ))
