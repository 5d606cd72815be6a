"""The archive's files: which ones are candidate articles, and a fingerprint of their
stat signatures. Reads no file: this is all a build does when nothing changed, so it
imports nothing of the parser."""

from __future__ import annotations

import hashlib
import marshal
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from syndicate import __version__
from syndicate.errors import OutputError

if TYPE_CHECKING:
    from syndicate.model import Config

# Files that are plainly not articles are passed over without a word; anything else that
# fails to parse is named in the report, since it may be an article that broke.
NOT_ARTICLES = {
    ".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".svg", ".bmp", ".ico", ".tif",
    ".tiff", ".heic", ".mp3", ".mp4", ".m4a", ".mov", ".webm", ".pdf", ".zip", ".gz",
    ".tgz", ".bz2", ".xz", ".7z", ".tar", ".md", ".rst", ".json", ".yaml", ".yml",
    ".toml", ".ini", ".cfg", ".csv", ".tsv", ".log", ".css", ".js", ".py", ".sh", ".db",
    ".sqlite", ".xml", ".atom", ".opml", ".html", ".htm", ".doc", ".docx", ".xls", ".xlsx",
}


def parse_settings(config: Config) -> str:
    """What a file's entry depends on besides its bytes; a change invalidates the cache."""
    return f"{__version__}|{config.site.timezone}|{','.join(config.site.encodings)}"


def scan(config: Config, stat: bool = True) -> list[tuple[str, int, int]]:
    """(path relative to the source, size, mtime_ns) for every candidate article file, in
    a stable order; without `stat`, size and mtime_ns are UNKNOWN (see list_archive).
    Dotfiles and dot-folders, non-article extensions, and the output and cache folders
    (when they live inside the source) are passed over. A symbolic link to a
    folder is followed (archives are often put together from several disks) but never
    into a folder already listed, so a link back up the tree ends there; links to files
    are read as the files they point to.

    Each folder is listed through an open descriptor, so that each file's stat resolves
    its name within the folder rather than its whole path: half the cost of a warm build
    of a large archive is these stats. The loop around them is kept lean (a list, not a
    generator; no function call per file but the stat): its own work is about a tenth
    of the listing's time."""
    site = config.site
    files: list[tuple[str, int, int]] = []
    append = files.append
    # Folders are known by (device, inode), so that no path to them, through a link or
    # not, is listed twice or lists the output or the cache.
    skip = {_identity(folder) for folder in (site.output, site.cache)} - {None}
    seen: set[tuple[int, int]] = set()  # every folder listed
    stack = [(str(site.source), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            identity = os.fstat(descriptor)
            if (identity.st_dev, identity.st_ino) in seen:
                continue
            seen.add((identity.st_dev, identity.st_ino))
            with os.scandir(descriptor) as listing:
                found = sorted(listing, key=_NAME)
            subfolders = []
            for item in found:
                name = item.name
                if name[0] == ".":
                    continue
                if item.is_dir():  # a folder, or a link to one
                    path = os.path.join(folder, name)
                    if _identity(path) not in skip:
                        subfolders.append((path, f"{prefix}{name}/"))
                    continue
                dot = name.rfind(".")  # the extension, if the name has one
                if dot > 0 and name[dot:].lower() in NOT_ARTICLES:
                    continue
                if not stat:
                    append((prefix + name, UNKNOWN, UNKNOWN))
                    continue
                try:
                    signature = item.stat()
                except OSError:
                    continue  # vanished, or a link to nothing
                append((prefix + name, signature.st_size, signature.st_mtime_ns))
        except OSError:
            continue
        finally:
            os.close(descriptor)
        stack.extend(reversed(subfolders))
    return files


def _identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(device, inode) of what the path leads to; None when it leads nowhere."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


_NAME = operator.attrgetter("name")


UNKNOWN = -1  # the size and mtime_ns of a file listed without its stat signature


@dataclass(frozen=True, slots=True)
class Listing:
    """The candidate files and their stat signatures, and a fingerprint of them all: an
    equal fingerprint means no file was added, removed, renamed or touched."""

    files: tuple[tuple[str, int, int], ...]  # (path, size, mtime_ns), in scan order
    fingerprint: str  # "" for a listing without stat signatures (see list_archive)

    @property
    def has_stats(self) -> bool:
        """False for a listing made without stat signatures (list_archive(stat=False)),
        until a Completion gives it those the first pass found."""
        return bool(self.fingerprint)

    def __reduce__(self) -> tuple[Callable[[bytes, str], Listing], tuple[bytes, str]]:
        # A listing crosses processes pickled (build.py has it made in a worker process):
        # marshal writes and reads 10,000 files' tuples in 2.8 ms, where pickle takes 5.
        return _unmarshalled, (marshal.dumps(self.files), self.fingerprint)


def _unmarshalled(files: bytes, fingerprint: str) -> Listing:
    return Listing(marshal.loads(files), fingerprint)


def list_archive(config: Config, stat: bool = True) -> Listing:
    """The archive's listing. Without `stat`, the files' stat signatures are left UNKNOWN
    (and the fingerprint empty) for the first pass to take from each file as it reads it
    (index.py; a Completion then makes the listing whole): a build that reads every file
    (the cache knows none) spares its stats, which on one core cost 70 ms at 10,000
    files before any worker could start."""
    site = config.site
    if not site.source.is_dir():
        raise OutputError(str(site.source), "the source folder does not exist or is not a "
                          "folder (unmounted disk?); feeds left as they are")
    files = tuple(scan(config, stat))
    return Listing(files, _fingerprint(config, files) if stat else "")


class Completion:
    """A listing made without stat signatures, completed with those the first pass finds:
    add() each file as it is read, in the listing's order, with its size and mtime_ns
    (a file found gone is not added, as a listing made with stats leaves out a file gone
    before its stat); listing() then gives the listing a stat would have made. The
    fingerprint is hashed as the files come, every BATCH of them, while the first pass's
    workers read the next ones: worked out at the end (15 ms at 10,000 files), it kept
    the other core idle."""

    BATCH = 1000

    def __init__(self, config: Config) -> None:
        self._files: list[tuple[str, int, int]] = []
        self._digest = _digest(config)
        self._hashed = 0  # files whose lines the digest has

    def add(self, path: str, size: int, mtime_ns: int) -> None:
        self._files.append((path, size, mtime_ns))
        if len(self._files) - self._hashed == self.BATCH:
            self._hash()

    def listing(self) -> Listing:
        self._hash()
        return Listing(tuple(self._files), self._digest.hexdigest())

    def _hash(self) -> None:
        new = self._files[self._hashed:]
        if new:
            # The lines _fingerprint joins, each after a newline but the first.
            self._digest.update(_lines(new, after_newline=self._hashed > 0))
            self._hashed = len(self._files)


def _fingerprint(config: Config, files: Sequence[tuple[str, int, int]]) -> str:
    digest = _digest(config)
    digest.update(_lines(files))
    return digest.hexdigest()


def _digest(config: Config) -> hashlib._Hash:
    return hashlib.sha256(f"{parse_settings(config)}|{config.site.source}".encode())


def _lines(files: Sequence[tuple[str, int, int]], after_newline: bool = False) -> bytes:
    text = "\n".join(f"{p}\0{size}\0{mtime}" for p, size, mtime in files)
    return (("\n" if after_newline else "") + text).encode("utf-8", "surrogateescape")
