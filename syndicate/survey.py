"""What the archive holds, for people who set up and check channels: each channel's
counts (`syndicate list`), one file as the parser reads it (`syndicate show`), and the
sections, language and time zone found in an archive (`syndicate init`).

Read-only: nothing here writes a feed or the cache, and no lock is taken, so these run
safely beside a cron build. Kept out of build.py, which runs the pipeline; these only
look at its stages.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import statistics
import zoneinfo
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from syndicate.cache import Cache
from syndicate.errors import ArticleError, RenderError
from syndicate.index import ArchiveIndex, index_archive
from syndicate.listing import NOT_ARTICLES, list_archive, parse_settings
from syndicate.model import Article, Channel, Config, Entry, Site
from syndicate.parse import DEFAULT_ENCODINGS, read_body
from syndicate.select import merge_captures, newest_first, wanted

# --- syndicate list ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelCount:
    channel: Channel
    matched: int  # articles its rules select, captures merged, before `limit`
    items: int  # items in its feeds: after `limit` and the byte budget (the fewest of its formats)
    newest: datetime | None  # the newest item's publication


@dataclass(frozen=True, slots=True)
class Census:
    files: int  # candidate files seen
    articles: int  # distinct articles
    skipped: int  # files that gave no article
    channels: tuple[ChannelCount, ...]


def count_channels(config: Config, now: datetime) -> Census:
    """Every channel's counts, as a build would make them. Reads the whole archive (like
    `check`: the cache is neither used nor touched) and renders the feeds in memory, so
    that `items` accounts for the byte budget too."""
    from syndicate.pipeline import render_feed  # the rendering stack, only for this command

    index = _index(config, now)
    ordered = newest_first(merge_captures(index.entries).entries)
    loaded: dict[str, Article | None] = {}
    counts: list[ChannelCount] = []
    for channel in config.channels:
        matched = [entry for entry in ordered if wanted(entry, channel)]
        chosen = matched[: channel.limit]
        articles = _load(config, chosen, loaded)
        items = len(articles)
        for fmt in channel.formats:
            try:
                _data, dropped = render_feed(config, channel, fmt, articles)
            except RenderError:
                continue  # `check` names it; the count stays what the selection gives
            items = min(items, len(articles) - dropped)
        counts.append(ChannelCount(channel, len(matched), items,
                                   chosen[0].published if chosen else None))
    skipped = sum(1 for problem in index.problems if problem.skipped)
    return Census(index.files, len(ordered), skipped, tuple(counts))


def _index(config: Config, now: datetime) -> ArchiveIndex:
    cache, _notice = Cache.open(None, parse_settings(config))  # in memory, forgotten after
    try:
        return index_archive(config, cache, now, list_archive(config))
    finally:
        cache.close()


def _load(config: Config, entries: Sequence[Entry],
          loaded: dict[str, Article | None]) -> list[Article]:
    from syndicate.content import article_from

    site = config.site
    out: list[Article] = []
    for entry in entries:
        if entry.path not in loaded:
            try:
                data = (site.source / entry.path).read_bytes()
                loaded[entry.path] = article_from(entry, read_body(data, entry.path,
                                                                   site.encodings))
            except (OSError, ArticleError):  # vanished, or broken, since it was indexed
                loaded[entry.path] = None
        article = loaded[entry.path]
        if article is not None:
            out.append(article)
    return out


# --- syndicate show ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Inspection:
    """One file as a build would read it."""

    path: str  # as a build names it: relative to the source folder when inside it
    article: Article | None  # None when the file would be skipped or passed over
    warnings: tuple[str, ...] = ()
    reason: str | None = None  # why it gives no article


def inspect_file(file: Path, config: Config | None, now: datetime) -> Inspection:
    """Parse one file with the config's time zone and encodings (UTC and the default
    encodings without a config). Raises OSError when the file cannot be read."""
    from syndicate.content import parse_article

    timezone, encodings = ("UTC", DEFAULT_ENCODINGS) if config is None else (
        config.site.timezone, config.site.encodings)
    absolute = file.absolute()
    shown = file.name
    if config is not None and absolute.is_relative_to(config.site.source):
        shown = absolute.relative_to(config.site.source).as_posix()
    suffix = file.suffix.lower()
    if file.name.startswith(".") or suffix in NOT_ARTICLES:
        kind = "a dotfile" if file.name.startswith(".") else f"a {suffix} file"
        return Inspection(shown, None, reason=f"passed over: builds never read {kind}")
    data = file.read_bytes()
    try:
        parsed = parse_article(data, shown, zone=zoneinfo.ZoneInfo(timezone), encodings=encodings,
                               now=now)
    except ArticleError as e:
        return Inspection(shown, None, reason=e.reason)
    warnings = parsed.warnings
    if parsed.entry.disagreement:
        warnings = (*warnings, parsed.entry.disagreement)
    return Inspection(shown, parsed.article, warnings)


def article_json(inspection: Inspection) -> str:
    """The inspection as JSON: every field of the Article (dates in ISO 8601, images as
    a list of objects) and the parser's warnings; or the reason the file gives none."""
    record: dict[str, Any]
    if inspection.article is None:
        record = {"path": inspection.path, "skipped": True, "reason": inspection.reason}
    else:
        record = dataclasses.asdict(inspection.article)
        record["warnings"] = list(inspection.warnings)
    return json.dumps(record, ensure_ascii=False, indent=2, default=_jsonable)


def _jsonable(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# --- syndicate init ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Section:
    name: str  # as section_of gives it (the URL's first path segment, lower case)
    articles: int
    link: str  # the section's page on the source site


@dataclass(frozen=True, slots=True)
class Survey:
    """What `init` needs to know about an archive."""

    source: Path
    files: int
    articles: int
    skipped: int
    sections: tuple[Section, ...]  # most articles first
    home: str | None  # the source site's home page (its most common scheme and host)
    language: str | None  # a language tag, when the titles make it plain
    utc_offset: timedelta | None  # how far the <time> wall clock runs ahead of UTC


def survey_archive(source: Path, encodings: Sequence[str], now: datetime) -> Survey:
    """Read every article (first pass only) and summarize it. <time> values are read as
    UTC so their offset from the capture header shows the source's zone."""
    source = source.resolve()
    site = Site(title="", base_url="https://example.invalid/", source=source,
                output=source / ".syndicate-init", cache=source / ".syndicate-init",
                timezone="UTC", encodings=tuple(encodings))
    index = _index(Config(path=source / "config.yaml", site=site, channels=()), now)
    merged = merge_captures(index.entries).entries
    sections: dict[str, list[str]] = {}
    for entry in merged:
        if entry.section:
            sections.setdefault(entry.section, []).append(entry.url)
    found = [Section(name, len(urls), _common_link(urls, name))
             for name, urls in sections.items()]
    found.sort(key=lambda s: (-s.articles, s.name))
    return Survey(
        source=source, files=index.files, articles=len(merged),
        skipped=sum(1 for p in index.problems if p.skipped), sections=tuple(found),
        home=_common_link([e.url for e in merged], ""),
        language=guess_language([e.title for e in merged]),
        utc_offset=_offset(index.entries),
    )


def _common_link(urls: Sequence[str], section: str) -> str:
    bases = Counter(f"{p.scheme}://{p.netloc}/" for p in (urlsplit(u) for u in urls))
    if not bases:
        return ""
    base = min(bases, key=lambda b: (-bases[b], b))
    return f"{base}{section}/" if section else base


_HAN = re.compile(r"[\u4e00-\u9fff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LATIN = re.compile(r"[A-Za-z]")


def guess_language(titles: Sequence[str]) -> str | None:
    """zh-CN, zh-TW, ja or ko when the titles' script says so; None otherwise (a Latin
    script alone does not tell English from French)."""
    text = "".join(titles)
    han, kana, hangul = len(_HAN.findall(text)), len(_KANA.findall(text)), len(_HANGUL.findall(text))
    letters = han + kana + hangul + len(_LATIN.findall(text))
    if not letters:
        return None
    if hangul > letters * 0.2:
        return "ko"
    if kana > letters * 0.05:
        return "ja"
    if han > letters * 0.3:
        # Characters outside GB2312 are, in Chinese titles, almost always traditional ones.
        traditional = sum(1 for char in _HAN.findall(text) if not _in_gb2312(char))
        return "zh-TW" if traditional > han * 0.1 else "zh-CN"
    return None


def _in_gb2312(char: str) -> bool:
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _offset(entries: Sequence[Entry]) -> timedelta | None:
    """How far the <time> wall clock (read as UTC) runs ahead of the capture header, to
    the whole hour, over each story's first capture; None without such pairs, or when
    they scatter too much to say.

    A story is captured some time after it is published, so each gap is the zone's
    offset minus that delay: the offset is at least the gaps. The gaps near the top (the
    90th percentile, against a stray <time> after its capture) are those captured
    soonest; rounded up to the hour, they give the offset."""
    first: dict[str, Entry] = {}
    for entry in entries:
        if entry.url not in first or entry.captured < first[entry.url].captured:
            first[entry.url] = entry
    gaps = sorted((e.source_time - e.captured).total_seconds() / 3600 for e in first.values()
                  if e.source_time is not None and e.source_time != e.captured)
    if not gaps:
        return None
    top = gaps[min(len(gaps) - 1, int(len(gaps) * 0.9))]
    middle = statistics.median(gaps)
    hours = math.ceil(top - 0.1)  # a capture within six minutes counts as on time
    if top - middle > 6 or abs(hours) > 14:
        return None  # captured at random times, or <time> means something else
    return timedelta(hours=hours)


# Named zones for the offsets this archive format comes with; others get a fixed-offset zone.
_ZONES = {("zh-CN", 8): "Asia/Shanghai", ("zh-TW", 8): "Asia/Taipei", ("ja", 9): "Asia/Tokyo",
          ("ko", 9): "Asia/Seoul"}


def guess_timezone(survey: Survey) -> str:
    """An IANA zone for the survey's offset: a named one where the language makes it
    likely, else Etc/GMT±N (whose sign is inverted: UTC+8 is Etc/GMT-8)."""
    if survey.utc_offset is None:
        return "UTC"
    hours = int(survey.utc_offset.total_seconds() // 3600)
    if hours == 0:
        return "UTC"
    named = _ZONES.get((survey.language or "", hours))
    if named:
        return named
    zone = f"Etc/GMT{-hours:+d}"
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):  # Etc/ stops at GMT+12
        return "UTC"
    return zone
