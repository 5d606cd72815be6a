"""The records that flow through the pipeline. Frozen, typed, tuples not lists."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from syndicate.errors import OutputError, RenderError

Format = Literal["rss", "atom", "json"]
FORMATS: tuple[Format, ...] = ("rss", "atom", "json")
FILE_SUFFIX: dict[Format, str] = {"rss": ".xml", "atom": ".atom", "json": ".json"}

ContentMode = Literal["full", "summary"]
ImagesMode = Literal["enclosure", "inline", "both"]
ArchiveMode = Literal["none", "monthly"]


@dataclass(frozen=True, slots=True)
class Image:
    url: str  # absolute, as the reader will fetch it (proxy URLs kept as they are)
    mime: str  # from the real file name, also inside a proxy's ?url=
    length: int = 0  # bytes; 0 when unknown (RSS requires the attribute, 0 is the convention)
    caption: str = ""
    credit: str = ""
    width: int | None = None
    height: int | None = None
    lead: bool = False  # the article's lead <figure> image

    def __reduce__(self) -> tuple[type[Image], tuple[object, ...]]:
        return (Image, image_fields(self))  # see Article.__reduce__


@dataclass(frozen=True, slots=True)
class Article:
    url: str  # normalized; the item's identity (guid, Atom id) forever
    title: str
    published: datetime  # aware UTC: the earliest capture of this URL
    updated: datetime  # aware UTC: when the content last really changed
    section: str  # first path segment of the URL, also the item's category
    authors: tuple[str, ...]
    summary: str  # plain-text lead paragraph
    body_html: str  # sanitized full body with every image in place, URLs absolute
    # The same body with every image (and its caption) taken out; None when no channel
    # of the build sends images as enclosures only (content.article_from).
    body_html_without_images: str | None
    images: tuple[Image, ...]  # lead first, then body images in document order, no repeats
    source_time: datetime | None = None  # the <time> value, aware (zone from config or offset)
    original_url: str | None = None  # the footer's link to the original-language version
    original_lang: str | None = None  # its language tag (hreflang)
    path: str = ""  # the file this text came from, relative to the source folder
    content_hash: str = ""  # hash of what readers see; decides whether `updated` moves

    @property
    def lead_image(self) -> Image | None:
        return self.images[0] if self.images and self.images[0].lead else None

    @property
    def author(self) -> str:
        return ", ".join(self.authors)

    def __reduce__(self) -> tuple[type[Article], tuple[object, ...]]:
        # Pickled by the second pass's workers, kept pickled in the cache: as for Entry,
        # a constructor call (500 articles: pickled in 8 ms, not 12; loaded in 9, not 12).
        return (Article, article_fields(self))


@dataclass(frozen=True, slots=True)
class Entry:
    """What the fast first pass reads from one file: enough to select, order and merge
    articles without parsing their HTML. This is what the cache keeps for every file."""

    path: str  # relative to the source folder
    url: str
    title: str
    published: datetime  # aware UTC: the header instant, else the <time> value
    captured: datetime  # aware UTC: the header instant, else `published`
    source_time: datetime | None
    authors: tuple[str, ...]
    section: str
    content_hash: str  # of what readers see: title, authors and the raw body
    warnings: tuple[str, ...] = ()
    # Header and <time> more than a day apart. Only worth a warning for a story's first
    # capture: a re-capture days later is expected to be far from its <time>.
    disagreement: str | None = None
    # Set when captures of one URL are merged: the capture where the current text first
    # appeared. None for a single capture (then it is `captured`).
    updated: datetime | None = None
    # A date was judged "in the future" against the clock: parse the file again next run
    # (do not cache the judgement), since it may become plausible.
    recheck: bool = False

    def rendered_key(self) -> str:
        """What of this entry a rendered file (feed, page, archive month) depends on: the
        digests that spare an unchanged file its rendering are made of these."""
        return (f"{self.path}|{self.url}|{self.content_hash}|{self.published.timestamp()}|"
                f"{(self.updated or self.captured).timestamp()}")

    def __reduce__(self) -> tuple[type[Entry], tuple[object, ...]]:
        # Entries are pickled back from worker processes and in the snapshot's head
        # (each channel's selection): a plain constructor call loads several times faster
        # than the slotted dataclass's field-by-field default, and attrgetter collects
        # the fields in C.
        return (Entry, entry_fields(self))


# A record's fields as a tuple, in order (for pickling, and the snapshot's rows).
entry_fields = operator.attrgetter(*Entry.__slots__)
article_fields = operator.attrgetter(*Article.__slots__)
image_fields = operator.attrgetter(*Image.__slots__)


@dataclass(frozen=True, slots=True)
class Stamp:
    """What readers were told of one URL: the content's hash and the item's dates."""

    content_hash: str
    published: datetime
    updated: datetime


@dataclass(frozen=True, slots=True)
class Rules:
    """Selection rules. Every given rule must match (include) / any match excludes."""

    sections: tuple[str, ...] = ()
    url_globs: tuple[str, ...] = ()
    title_patterns: tuple[re.Pattern[str], ...] = ()
    authors: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.sections or self.url_globs or self.title_patterns or self.authors)


@dataclass(frozen=True, slots=True)
class Channel:
    id: str  # safe file name; feeds are <id>.xml, <id>.atom, <id>.json
    title: str
    link: str
    description: str
    language: str | None = None
    include: Rules = field(default_factory=Rules)
    exclude: Rules = field(default_factory=Rules)
    limit: int = 50
    formats: tuple[Format, ...] = FORMATS
    content: ContentMode = "full"
    # inline by default: every reader shows the body, so images stay where the author put
    # them, and the lead image is also the enclosure that list views use as a thumbnail.
    images: ImagesMode = "inline"
    max_bytes: int = 5 * 1024 * 1024
    archive: ArchiveMode = "none"
    schedule: str | None = None


@dataclass(frozen=True, slots=True)
class Site:
    title: str
    base_url: str  # public URL of the output folder, always ending in "/"
    source: Path  # absolute
    output: Path  # absolute
    cache: Path  # absolute
    timezone: str = "UTC"
    hub: str | None = None
    encodings: tuple[str, ...] = ("utf-8", "gb18030", "big5")
    probe_enclosures: bool = False
    probe_private: bool = False
    schedule: str | None = None

    def feed_url(self, channel_id: str, fmt: Format) -> str:
        return f"{self.base_url}{channel_id}{FILE_SUFFIX[fmt]}"


@dataclass(frozen=True, slots=True)
class Config:
    path: Path  # the config file, absolute
    site: Site
    channels: tuple[Channel, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """A file the build skipped, or something about it worth a warning."""

    path: str
    message: str
    skipped: bool  # True: the file gave no article; False: a warning, the article was kept

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class FeedResult:
    channel: str
    fmt: Format
    path: Path
    items: int
    written: bool  # False when the bytes on disk were already identical
    dropped_for_size: int = 0  # oldest items left out to stay under max_bytes


@dataclass(frozen=True, slots=True)
class Failure:
    """A feed that could not be rendered or written; its last good file was kept."""

    path: str
    reason: str

    @staticmethod
    def of(path: Path, error: RenderError | OutputError) -> Failure:
        """The failure a render or write error means for the file at `path`."""
        if isinstance(error, RenderError):
            return Failure(str(path), f"cannot render: {error}")
        return Failure(error.path, error.reason)


@dataclass(frozen=True, slots=True)
class BuildReport:
    files_seen: int
    articles: int  # distinct articles after merging captures of the same URL
    problems: tuple[Problem, ...]
    feeds: tuple[FeedResult, ...]
    failures: tuple[Failure, ...] = ()
    seconds: float = 0.0
    files_parsed: int = 0  # files read this run; the others came from the cache
    notices: tuple[str, ...] = ()  # one-line remarks, e.g. a cache that had to be rebuilt
    not_due: tuple[str, ...] = ()  # channels `build --due` left alone: not yet due
    archives: tuple[FeedResult, ...] = ()  # monthly archive documents (`archive: monthly`)
    hub_notified: tuple[str, ...] = ()  # feed URLs the WebSub hub was told of this run
    # (feed URL, why) the hub could not be told; a warning only, tried again next build
    hub_failed: tuple[tuple[str, str], ...] = ()
    probed: int = 0  # enclosure URLs asked this run (each is asked once, then remembered)
    probe_failures: tuple[tuple[str, str], ...] = ()  # (image URL, why its size stays unknown)

    @property
    def skipped(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.skipped)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if not p.skipped)

    @property
    def written(self) -> int:
        return sum(1 for f in self.feeds if f.written)
