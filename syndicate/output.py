"""Writing feeds safely: atomic, only when changed, world-readable, never through a
symlink, and one writer at a time."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from syndicate.errors import LockedError, OutputError

# Temporary files start with a dot and end in .tmp: no web server index or feed reader
# takes them for a feed, and the next run can recognise and remove a killed run's leftovers.
TMP_PREFIX = ".syndicate-"
TMP_SUFFIX = ".tmp"
FILE_MODE = 0o644
FOLDER_MODE = 0o755


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` to `path` unless the file already holds exactly these bytes (so its
    mtime, and with it HTTP caching, stays). Returns True when the file was written.

    The new file is written beside the old one, flushed and fsynced, then renamed over it:
    a reader (or a web server) sees the old file or the new one, never half of either."""
    if path.is_symlink():
        raise OutputError(str(path), "is a symbolic link; refusing to write through it")
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise OutputError(str(path), "is a folder, not a file") from None
    except OSError as e:
        raise OutputError(str(path), f"cannot read the current file: {e.strerror}") from e
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        ensure_folder(path.parent)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, FILE_MODE)  # whatever the umask: feeds are served to everyone
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OutputError(str(path), f"cannot write: {e.strerror or e}") from e
    return True


def ensure_folder(folder: Path) -> None:
    """Create the output folder (and parents) readable by everyone, whatever the umask:
    a web server running as another user must be able to list and read it."""
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for created in reversed(missing):
        created.mkdir(exist_ok=True)
        os.chmod(created, FOLDER_MODE)


def remove_leftovers(folder: Path) -> int:
    """Delete temporary files that a killed run left behind. Call while holding the lock."""
    removed = 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        if entry.name.startswith(TMP_PREFIX) and entry.name.endswith(TMP_SUFFIX):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed += 1
    return removed


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (a crash right after must not bring back the old file)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def build_lock(cache: Path, wait: float = 0.0) -> Iterator[None]:
    """Hold the build lock for this cache (one per site). flock is released by the kernel
    when the holder exits, however it exits, so there are no stale lock files to clean."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        fd = os.open(cache / "build.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise OutputError(str(cache), f"cannot create the lock file: {e.strerror or e}") from e
    try:
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise OutputError(str(cache), f"cannot lock: {e.strerror}") from e
                if time.monotonic() >= deadline:
                    raise LockedError(
                        f"another syndicate build is running for this site (lock: "
                        f"{cache / 'build.lock'}); not starting a second one"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def signature(path: Path | str) -> tuple[int, int]:
    """(size, mtime_ns) of a written file, which the cache records to tell whether anyone
    touched it since; (-1, -1) when it cannot be read."""
    try:
        stat = os.stat(path)
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)
