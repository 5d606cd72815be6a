"""Runs the pipeline: scan → parse → merge → select → render → write. Isolates failures:
a bad file is skipped and named, a channel that fails to render leaves its last good
feeds in place and does not stop the other channels."""

from __future__ import annotations

import json
import os
import time
import zoneinfo
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import lxml.etree

from syndicate.errors import ArticleError, OutputError, RenderError
from syndicate.model import (
    FILE_SUFFIX,
    Article,
    BuildReport,
    Channel,
    Config,
    Failure,
    FeedResult,
    Format,
    Problem,
)
from syndicate.output import build_lock, remove_leftovers, write_if_changed
from syndicate.parse import parse_article
from syndicate.render import RENDERERS
from syndicate.select import Capture, fit_budget, merge_captures, select

# Files that are plainly not articles are passed over without a word; anything else that
# fails to parse is named in the report, since it may be an article that broke.
NOT_ARTICLES = {
    ".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".svg", ".bmp", ".ico", ".tif",
    ".tiff", ".heic", ".mp3", ".mp4", ".m4a", ".mov", ".webm", ".pdf", ".zip", ".gz",
    ".tgz", ".bz2", ".xz", ".7z", ".tar", ".md", ".rst", ".json", ".yaml", ".yml",
    ".toml", ".ini", ".cfg", ".csv", ".tsv", ".log", ".css", ".js", ".py", ".sh", ".db",
    ".sqlite", ".xml", ".atom", ".opml", ".html", ".htm", ".doc", ".docx", ".xls", ".xlsx",
}

Progress = Callable[[int, int], None]  # (files done, files total)


@dataclass(frozen=True, slots=True)
class Corpus:
    """Everything read from the source folder."""

    files: int
    articles: tuple[Article, ...]
    problems: tuple[Problem, ...]


def scan(config: Config) -> Iterator[Path]:
    """Candidate article files under the source folder, in a stable order. Dotfiles and
    dot-folders, non-article extensions, and the output and cache folders (when they
    live inside the source) are passed over."""
    site = config.site
    skip = {site.output, site.cache}
    for folder, subfolders, names in os.walk(site.source):
        here = Path(folder)
        subfolders[:] = sorted(d for d in subfolders
                               if not d.startswith(".") and here / d not in skip)
        for name in sorted(names):
            if name.startswith(".") or os.path.splitext(name)[1].lower() in NOT_ARTICLES:
                continue
            yield here / name


def read_corpus(config: Config, now: datetime, progress: Progress | None = None) -> Corpus:
    """Parse every candidate file. A file that cannot become an article is a Problem."""
    site = config.site
    if not site.source.is_dir():
        raise OutputError(str(site.source), "the source folder does not exist or is not a "
                          "folder (unmounted disk?); feeds left as they are")
    zone = zoneinfo.ZoneInfo(site.timezone)
    files = list(scan(config))
    captures: list[Capture] = []
    problems: list[Problem] = []
    for done, path in enumerate(files, 1):
        shown = str(path)
        relative = path.relative_to(site.source).as_posix()
        try:
            data = path.read_bytes()
            parsed = parse_article(data, relative, zone=zone, encodings=site.encodings, now=now)
        except ArticleError as e:
            problems.append(Problem(shown, e.reason, skipped=True))
        except OSError as e:
            problems.append(Problem(shown, f"cannot read: {e.strerror or e}", skipped=True))
        else:
            problems.extend(Problem(shown, w, skipped=False) for w in parsed.warnings)
            captures.append(Capture(parsed.article, parsed.captured or parsed.article.published,
                                    parsed.disagreement))
        if progress:
            progress(done, len(files))
    merged = merge_captures(captures)
    problems.extend(Problem(str(site.source / path), message, skipped=False)
                    for path, message in merged.warnings)
    return Corpus(len(files), tuple(merged.articles), tuple(problems))


def render_feed(config: Config, channel: Channel, fmt: Format,
                items: Sequence[Article]) -> tuple[bytes, int]:
    """The feed's bytes within the channel's byte budget, and how many items were dropped.
    The bytes are parsed back before they are returned: a feed that does not parse is
    never written."""
    renderer = RENDERERS[fmt]
    try:
        data, dropped = fit_budget(items, lambda keep: renderer(config.site, channel, keep),
                                   channel.max_bytes)
        if fmt == "json":
            json.loads(data)
        else:
            lxml.etree.fromstring(data)
    except (ValueError, TypeError, lxml.etree.LxmlError) as e:
        raise RenderError(channel.id, fmt, str(e)) from e
    return data, dropped


def published_items(path: Path, fmt: Format) -> int | None:
    """How many items the feed now on disk holds; None when there is no readable feed."""
    try:
        data = path.read_bytes()
        if fmt == "json":
            return len(json.loads(data).get("items", []))
        root = lxml.etree.fromstring(data)
    except (OSError, ValueError, AttributeError, lxml.etree.LxmlError):
        return None
    return len(root.findall("channel/item")) + len(root.findall("{http://www.w3.org/2005/Atom}entry"))


def shrink_reason(path: Path, fmt: Format, channel: Channel, new_count: int) -> str | None:
    """Why writing `new_count` items over the published feed looks like lost input (an
    unmounted disk, an emptied folder) rather than news; None when it looks fine.

    A feed that can be full (the archive fills `limit`) never shrinks in normal use, so
    the file on disk is only read when the new feed is short of its limit."""
    if new_count >= channel.limit:
        return None
    before = published_items(path, fmt)
    if before is None:
        return None
    expected = min(before, channel.limit)  # a lowered limit is not a loss
    if (new_count == 0 and expected > 0) or new_count < expected / 2:
        return (f"would shrink from {before} to {new_count} items, which looks like lost "
                "articles (empty or unmounted source?); use --allow-shrink if it is intended")
    return None


def build(config: Config, now: datetime, *, write: bool = True, wait: float = 0.0,
          allow_shrink: bool = False, progress: Progress | None = None) -> BuildReport:
    """Build every channel. With write=False (`syndicate check`) nothing is written and no
    lock is taken, but every feed is still rendered, so render failures show."""
    started = time.monotonic()
    if not write:
        return _build(config, now, False, allow_shrink, progress, started)
    with build_lock(config.site.cache, wait):
        remove_leftovers(config.site.output)
        return _build(config, now, True, allow_shrink, progress, started)


def _build(config: Config, now: datetime, write: bool, allow_shrink: bool,
           progress: Progress | None, started: float) -> BuildReport:
    corpus = read_corpus(config, now, progress)
    results: list[FeedResult] = []
    failures: list[Failure] = []
    for channel in config.channels:
        items = select(corpus.articles, channel)
        for fmt in channel.formats:
            path = config.site.output / f"{channel.id}{FILE_SUFFIX[fmt]}"
            try:
                data, dropped = render_feed(config, channel, fmt, items)
                reason = None if allow_shrink else shrink_reason(path, fmt, channel, len(items))
                if reason:
                    raise OutputError(str(path), reason)
                written = write_if_changed(path, data) if write else False
            except RenderError as e:
                failures.append(Failure(str(path), f"cannot render: {e}"))
                continue
            except OutputError as e:
                failures.append(Failure(e.path, e.reason))
                continue
            results.append(FeedResult(channel.id, fmt, path, len(items) - dropped, written, dropped))
    return BuildReport(
        files_seen=corpus.files,
        articles=len(corpus.articles),
        problems=corpus.problems,
        feeds=tuple(results),
        failures=tuple(failures),
        seconds=time.monotonic() - started,
    )
