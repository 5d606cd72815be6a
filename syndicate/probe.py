"""Enclosure probing: the real byte length and type of each image, asked of the server
that holds it (`build --probe-enclosures`, or `site.probe_enclosures: true`).

Each image URL is asked once: a HEAD request, and when that gives no length (HEAD
refused, no Content-Length) a GET of the first byte (`Range: bytes=0-0`), whose
Content-Range gives the whole size. The answer is kept in the cache and never asked
again: an image at a URL does not change size. A failure is kept too, and asked again
only after RETRY_AFTER, when a feed that holds the image is next rendered. URLs that
lead where syndicate may not go (see publish.refusal) are refused before anything is
sent; that judgement is not cached, since it depends on the config and on DNS.

Requests go out a few at a time, each image has a few seconds, and one build spends at
most PROBE_BUDGET seconds on probing; images left over are asked on the next build, and
the documents that hold them are rendered again then. An image whose size stays
unknown keeps length 0, the RSS convention for "unknown", and is counted in the report.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta

from syndicate.cache import Cache, ProbeRecord
from syndicate.model import Article, Image
from syndicate.publish import Guard, NetworkError, Refused, Response, request

TIMEOUT = 5.0  # seconds for each connect and each read
PER_IMAGE = 10.0  # seconds for one image, redirects and the ranged GET included
PROBE_BUDGET = 60.0  # seconds of probing in one build
WORKERS = 8
MAX_REDIRECTS = 3
RETRY_AFTER = timedelta(days=7)
MAX_LENGTH = 1 << 40  # a length past this is a lie

# Types servers give images they do not label properly: the length is right, the type
# from the file name is better than this.
VAGUE_TYPES = {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}


class Sizer:
    """Gives articles' images their probed length and type, asking what is not known."""

    def __init__(self, cache: Cache, now: datetime, allow_private: bool) -> None:
        self.cache = cache
        self.now = now
        self.guard = Guard(allow_private)
        self.known: dict[str, ProbeRecord] = {}  # this build's answers, from the cache or asked
        self.asked = 0  # URLs a request was sent for in this build
        self.failures: dict[str, str] = {}  # URL → why its size is unknown (this build's answers)
        self.deferred: set[str] = set()  # not asked: this build's probing time was spent
        self._deadline: float | None = None

    def sized(self, articles: Sequence[Article]) -> list[Article]:
        self.learn(image.url for article in articles for image in article.images)
        return [self._apply(article) for article in articles]

    @property
    def exhausted(self) -> bool:
        """This build's probing time is spent: what is still unknown waits for the next."""
        return self._deadline is not None and time.monotonic() >= self._deadline

    def settled(self, articles: Iterable[Article]) -> bool:
        """False when some image of these articles was not asked for lack of time: the
        document that holds them must be rendered again on the next build."""
        return not any(image.url in self.deferred for article in articles
                       for image in article.images)

    def learn(self, urls: Iterable[str]) -> None:
        wanted = [url for url in dict.fromkeys(urls) if url not in self.known]
        if not wanted:
            return
        stored = self.cache.probes(wanted)
        ask: list[str] = []
        for url in wanted:
            record = stored.get(url)
            if record and (not record.error or self.now - record.checked < RETRY_AFTER):
                self.known[url] = record
            else:
                ask.append(url)
        if not ask:
            return
        if self._deadline is None:
            self._deadline = time.monotonic() + PROBE_BUDGET
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(ask))) as pool:
            answers = list(pool.map(self._ask, ask))
        remember: list[tuple[str, ProbeRecord]] = []
        for url, answer in zip(ask, answers, strict=True):
            if answer is None:
                self.deferred.add(url)
                continue
            record, sent = answer
            self.known[url] = record
            self.deferred.discard(url)
            if record.error:
                self.failures[url] = record.error
            if sent:
                self.asked += 1
                remember.append((url, record))
        self.cache.put_probes(remember)

    def _ask(self, url: str) -> tuple[ProbeRecord, bool] | None:
        """The answer for one URL and whether a request was sent (only then is it cached);
        None when the build's probing time is spent. Runs in a worker thread."""
        assert self._deadline is not None
        if time.monotonic() >= self._deadline:
            return None
        deadline = time.monotonic() + PER_IMAGE
        try:
            length, mime = measure(url, self.guard, deadline)
        except Refused as e:
            # Refused at the first hop: nothing was sent. At a later hop, a server did answer
            # (with a redirect to where we may not go), and that answer is kept.
            return ProbeRecord(0, "", f"refused: {e.reason}", self.now), e.sent
        except NetworkError as e:
            return ProbeRecord(0, "", e.reason, self.now), True
        return ProbeRecord(length, mime, "", self.now), True

    def _apply(self, article: Article) -> Article:
        images = tuple(self._image(image) for image in article.images)
        return article if images == article.images else replace(article, images=images)

    def _image(self, image: Image) -> Image:
        record = self.known.get(image.url)
        if record is None or record.error:
            return image
        return replace(image, length=record.length, mime=record.mime or image.mime)


def measure(url: str, guard: Guard, deadline: float) -> tuple[int, str]:
    """(length in bytes, MIME type or "" when the server's is vague) of the resource at
    `url`. Raises Refused or NetworkError (with the reason) when it cannot be learnt."""
    head = _checked(request("HEAD", url, timeout=TIMEOUT, guard=guard, redirects=MAX_REDIRECTS,
                            deadline=deadline))
    if head.status in (404, 410):
        raise NetworkError(f"HTTP {head.status}")
    if 200 <= head.status < 300:
        length = _length(head.headers.get("content-length", ""))
        if length:
            return length, _mime(head)
    # HEAD not allowed (405, 501, some CDNs' 403) or no length: ask for the first byte.
    get = _checked(request("GET", url, timeout=TIMEOUT, headers={"Range": "bytes=0-0"}, guard=guard,
                           redirects=MAX_REDIRECTS, deadline=deadline))
    if get.status == 206:
        total = get.headers.get("content-range", "").rpartition("/")[2]
        length = _length(total)
    elif get.status == 200:  # the server ignored the range: the body is the whole file
        length = _length(get.headers.get("content-length", ""))
    else:
        raise NetworkError(f"HTTP {get.status}")
    if not length:
        raise NetworkError("the server did not say how large it is")
    return length, _mime(get)


def _checked(response: Response) -> Response:
    mime = _media_type(response)
    if 200 <= response.status < 300 and mime not in VAGUE_TYPES and not mime.startswith("image/"):
        raise NetworkError(f"not an image ({mime})")
    return response


def _mime(response: Response) -> str:
    mime = _media_type(response)
    return "" if mime in VAGUE_TYPES else mime


def _media_type(response: Response) -> str:
    return response.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _length(text: str) -> int:
    text = text.strip()
    if not text.isascii() or not text.isdigit():
        return 0
    value = int(text)
    return value if 0 < value < MAX_LENGTH else 0
