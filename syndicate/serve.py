"""`syndicate serve`: the output folder over HTTP, as a web server would publish it, for
previewing feeds and pages in a browser or a feed reader on this machine.

Only regular files inside the output folder are served. A request path is decoded one
segment at a time, and refused (404) when a segment is `.`, `..`, a dotfile (such as a
build's temporary file) or holds an encoded slash, backslash or NUL; a path that
resolves outside the folder through a symbolic link is refused with 403. Folders are
never listed; `/` (or a folder's `/`) serves its `index.html`.

Responses carry the type of each format with `charset=utf-8`, a strong `ETag` (a hash of
the bytes) and `Last-Modified`, answer `If-None-Match` / `If-Modified-Since` with 304,
and are gzipped when the client accepts it. The files are small and few, so each is
read whole on each request: a rebuilt file is served at once, with no cache to go stale.

With --build, a background thread polls the article files and the config and rebuilds
(with build.build, taking the same lock as cron's builds) when something changed.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import socket
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from syndicate.build import build
from syndicate.config import load_config
from syndicate.errors import ConfigError, LockedError, SyndicateError
from syndicate.listing import scan
from syndicate.model import Config

Log = Callable[[str], None]
Clock = Callable[[], datetime]

# Types for what syndicate writes, and for what a publisher may put beside it.
CONTENT_TYPES = {
    ".xml": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
}
DEFAULT_TYPE = "application/octet-stream"
COMPRESSIBLE = {".xml", ".atom", ".json", ".opml", ".html", ".htm", ".css", ".txt", ".svg"}
MIN_GZIP = 256  # below this, gzip's own header costs more than it saves
POLL_SECONDS = 2.0


class Refused(Exception):
    """A request path that names nothing we serve; carries the status to answer with."""

    def __init__(self, status: HTTPStatus) -> None:
        self.status = status
        super().__init__(status.phrase)


def resolve(root: Path, request_path: str) -> Path:
    """The file that a request path names inside `root` (which must be resolved), or
    Refused. Segments are split before they are decoded, so `%2F` can never become a
    separator, and `//` collapses (`//etc/passwd` is `etc/passwd` under the root)."""
    path = request_path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        raise Refused(HTTPStatus.BAD_REQUEST)
    segments: list[str] = []
    for raw in path.split("/"):
        if not raw:
            continue
        try:
            segment = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise Refused(HTTPStatus.NOT_FOUND) from None
        if segment.startswith(".") or any(c in segment for c in "/\\\0"):
            raise Refused(HTTPStatus.NOT_FOUND)  # '.', '..', dotfiles, encoded separators
        segments.append(segment)
    candidate = root.joinpath(*segments)
    if path.endswith("/"):
        candidate = candidate / "index.html"
    try:
        real = candidate.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise Refused(HTTPStatus.NOT_FOUND) from None
    if not real.is_relative_to(root):
        raise Refused(HTTPStatus.FORBIDDEN)  # a symbolic link that leads out of the folder
    if not real.is_file():
        raise Refused(HTTPStatus.NOT_FOUND)  # folders are never listed
    return real


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (`gzip;q=0` and `*;q=0` refuse it)."""
    explicit: float | None = None
    wildcard: float | None = None
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        name = name.strip().lower()
        if name in ("gzip", "x-gzip"):
            explicit = quality
        elif name == "*":
            wildcard = quality
    if explicit is not None:
        return explicit > 0
    return wildcard is not None and wildcard > 0


@dataclass(frozen=True, slots=True)
class _Body:
    data: bytes
    etag: str
    encoding: str | None


class Handler(BaseHTTPRequestHandler):
    server: PreviewServer
    protocol_version = "HTTP/1.1"
    def version_string(self) -> str:
        return "syndicate"

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def _not_allowed(self) -> None:
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def _respond(self, send_body: bool) -> None:
        try:
            path = resolve(self.server.root, self.path)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as f:
                info = os.fstat(f.fileno())
                if not stat.S_ISREG(info.st_mode):
                    raise Refused(HTTPStatus.NOT_FOUND)
                data = f.read()
        except Refused as e:
            self._error(e.status)
            return
        except OSError:
            self._error(HTTPStatus.NOT_FOUND)
            return
        suffix = path.suffix.lower()
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        plain_tag, gzip_tag = f'"{digest}"', f'"{digest}-gzip"'
        compressible = suffix in COMPRESSIBLE
        headers = {
            "Last-Modified": formatdate(info.st_mtime, usegmt=True),
            "Cache-Control": "no-cache",  # always revalidate: this is a preview of changing files
            "X-Content-Type-Options": "nosniff",
        }
        if compressible:
            headers["Vary"] = "Accept-Encoding"
        use_gzip = (compressible and len(data) >= MIN_GZIP
                    and accepts_gzip(self.headers.get("Accept-Encoding", "")))
        body = (_Body(gzip.compress(data, compresslevel=6, mtime=0), gzip_tag, "gzip") if use_gzip
                else _Body(data, plain_tag, None))
        headers["ETag"] = body.etag
        if self._not_modified(info.st_mtime, (plain_tag, gzip_tag)):
            self.send_response(HTTPStatus.NOT_MODIFIED)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", CONTENT_TYPES.get(suffix, DEFAULT_TYPE))
        self.send_header("Content-Length", str(len(body.data)))
        if body.encoding:
            self.send_header("Content-Encoding", body.encoding)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body.data)

    def _not_modified(self, mtime: float, tags: tuple[str, ...]) -> bool:
        """RFC 9110 §13.2.2: If-None-Match decides when present (weak comparison, either
        encoding of the same bytes matches); If-Modified-Since only without it."""
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            offered = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return "*" in offered or bool(offered & set(tags))
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                moment = parsedate_to_datetime(since)
            except (TypeError, ValueError, IndexError):
                return False
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return int(mtime) <= moment.timestamp()
        return False

    def _error(self, status: HTTPStatus) -> None:
        body = f"{status.value} {status.phrase}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        self.server.log(f"{self.address_string()} {format % args}")


class PreviewServer(ThreadingHTTPServer):
    daemon_threads = True  # an open keep-alive connection never holds up Ctrl-C

    def __init__(self, host: str, port: int, root: Path, log: Log) -> None:
        self.root = root.resolve()
        self.log = log
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"


class Rebuilder(threading.Thread):
    """Polls the article files and the config; rebuilds when either changed. A build that
    fails (bad config, another build holding the lock) is reported and tried again on
    the next change (or, for the lock, on the next poll); the last good output stays."""

    def __init__(self, config_path: Path, config: Config, clock: Clock, log: Log,
                 interval: float = POLL_SECONDS) -> None:
        super().__init__(name="syndicate-rebuild", daemon=True)
        self.config_path = config_path
        self.config = config
        self.clock = clock
        self.log = log
        self.interval = interval
        self.stopped = threading.Event()
        self.last = self.signature()

    def stop(self) -> None:
        self.stopped.set()

    def signature(self) -> str:
        """A digest of the config's bytes and every article file's path, size and mtime."""
        digest = hashlib.blake2b(digest_size=16)
        with contextlib.suppress(OSError):
            digest.update(self.config_path.read_bytes())
        for path, size, mtime_ns in scan(self.config):
            digest.update(f"\0{path}\0{size}\0{mtime_ns}".encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def run(self) -> None:
        wait = self.interval
        while not self.stopped.wait(wait):
            started = time.monotonic()
            current = self.signature()
            # Scanning a huge archive every two seconds would keep a core busy: poll at
            # most a fifth of the time.
            wait = max(self.interval, 4 * (time.monotonic() - started))
            # The signature taken before the build: a change made while it runs is seen
            # at the next poll and builds again.
            if current != self.last and self.rebuild():
                self.last = current

    def rebuild(self) -> bool:
        """Build once; False when it should be tried again at the next poll."""
        try:
            self.config = load_config(self.config_path)
        except ConfigError as e:
            for problem in e.problems:
                self.log(f"{problem}")
            self.log("config has problems; serving the last good output")
            return True  # wait for the next change of the files
        try:
            report = build(self.config, self.clock(), wait=0.0)
        except LockedError:
            return False
        except SyndicateError as e:
            self.log(f"error: {e}")
            return True
        written = report.written
        skipped = len(report.skipped)
        self.log(f"rebuilt: {report.articles} articles, {written} feeds written"
                 + (f", {skipped} files skipped" if skipped else "")
                 + (f", {len(report.failures)} failed" if report.failures else "")
                 + f" in {report.seconds:.1f}s")
        for failure in report.failures:
            self.log(f"{failure.path}: error: {failure.reason}")
        return True
