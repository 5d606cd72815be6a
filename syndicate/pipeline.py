"""The pipeline: parse → merge → select → render → write, for a build that has work to do
(build.py decides). Isolates failures: a bad file is skipped and named, a channel that
fails to render leaves its last good feeds in place and does not stop the other channels."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pickle
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from syndicate import __version__, archive
from syndicate.cache import Cache
from syndicate.errors import ArticleError, OutputError, RenderError
from syndicate.index import Progress
from syndicate.listing import Listing
from syndicate.model import (
    FILE_SUFFIX,
    Article,
    BuildReport,
    Channel,
    Config,
    Entry,
    Failure,
    FeedResult,
    Format,
    Problem,
)
from syndicate.output import signature, write_if_changed
from syndicate.parse import read_body
from syndicate.select import (
    fit_budget,
)
from syndicate.stories import Stories, read_stories
from syndicate.workers import map_forked, started

if TYPE_CHECKING:  # probe.py and publish.py load the network stack: only when used
    from syndicate.probe import Sizer

# Items rendered (summed over the feeds and pages) below which forking workers costs
# more than it saves: about two feeds of 50 items, which take a worker 10-15 ms. A
# one-article update re-renders a handful of feeds and pages (at 10k, six feeds and four
# pages: 0.410 -> 0.348 s on two workers rather than in this process), a cold build dozens.
RENDER_PARALLEL_MIN = 100
# Up to this many stories, the main process stores them while the second pass's workers
# run (see run): copy-on-write costs about 1 KB per story.
OVERLAP_MAX_STORIES = 20_000


def render_feed(config: Config, channel: Channel, fmt: Format, items: Sequence[Article],
                history: archive.History | None = None) -> tuple[bytes, int]:
    """The feed's bytes within the channel's byte budget, and how many items were dropped.
    The bytes are read back before they are returned (expat for XML, see
    render.common.well_formed; json.loads for JSON Feed): a feed that does not parse is
    never written. `history`: the link to the newest archive month (archive: monthly)."""
    # The rendering stack (feedgen, lxml) is imported on first use: a cron run that finds
    # nothing changed renders nothing and is spared loading it.
    import lxml.etree

    from syndicate.render import RENDERERS
    from syndicate.render.common import well_formed

    renderer = RENDERERS[fmt]
    try:
        def render(keep: Sequence[Article]) -> bytes:
            data = renderer(config.site, channel, keep)
            return archive.decorate(data, fmt, history) if history else data

        data, dropped = fit_budget(items, render, channel.max_bytes)
        if fmt == "json":
            json.loads(data)
        else:
            well_formed(data)
    except (ValueError, TypeError, lxml.etree.LxmlError) as e:
        raise RenderError(channel.id, fmt, str(e)) from e
    return data, dropped


# What parsing articles and rendering need beyond this module's own imports (lxml, nh3,
# feedgen and our renderers: 40 ms), which render_feed, _render_page and _second_pass
# otherwise import on first use. build.py imports them one at a time while a large
# archive is listed (build._importing_the_pipeline).
RENDERING_STACK = ("lxml.etree", "syndicate.content", "syndicate.render", "syndicate.render.html",
                   "syndicate.render.opml", "syndicate.render.site")


def load_rendering_stack() -> None:
    """Import RENDERING_STACK. run() has this done while the first pass's workers read
    the archive: the worker processes that parse and render are forked later and inherit
    it, where each would otherwise import it for itself, and on the critical path."""
    for name in RENDERING_STACK:
        importlib.import_module(name)


def _render_job(config: Config,
                job: tuple[Channel, Format, list[Article], archive.History | None]
                | tuple[str, Sequence[tuple[Channel, Sequence[Entry]]], list[Article]]
                ) -> tuple[bytes, int] | str:
    """render_feed, or a site page's _render_page, in a worker process: a failure comes
    back as its reason (a value, since the exception itself does not survive pickling)."""
    if isinstance(job[0], str):  # a site page, by name: (name, selections, articles)
        name, selections, articles = job
        try:
            return _render_page(config, name, selections, articles), 0
        except (ValueError, TypeError) as e:  # lxml refuses text that XML cannot hold
            return f"cannot render: {e}"
    channel, fmt, items, history = job
    try:
        return render_feed(config, channel, fmt, items, history)
    except RenderError as e:
        return e.reason


def published_items(path: Path, fmt: Format) -> int | None:
    """How many items the feed now on disk holds; None when there is no readable feed."""
    import lxml.etree

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


def run(config: Config, cache: Cache, now: datetime, listing: Listing, *,
        building: Sequence[Channel], write: bool, allow_shrink: bool,
        progress: Progress | None, notify: bool) -> tuple[BuildReport, bool, Listing]:
    """Build the channels in `building` (see build.build) from the archive's files as
    `listing` found them. Returns the report; whether the same inputs would give the
    same output again (see build.py's no-change shortcut): not when this run failed
    somewhere, judged a date against the clock, or asked image servers for sizes; and
    the listing with every file's stat signature as read (see listing.list_archive)."""
    site = config.site
    stories, ledger_changes = read_stories(config, cache, now, listing, progress,
                                           meanwhile=load_rendering_stack)
    plan = _plan(config, stories, cache, building, write)
    loader = _ArticleLoader(config, cache, _sizer(config, cache, now) if write else None)

    def save_state() -> None:
        # The main process's cache writes, done while the workers parse articles rather
        # than while they wait: what read_stories left to store, and the ledger.
        stories.save()
        if write:
            cache.put_ledger(ledger_changes)

    # While forked workers live, each page the main process touches (reading every
    # story to store it touches them all) becomes a copy. For a large archive that is
    # memory (+90 MB at 100k stories, measured) for no more time saved than at 10k:
    # store first.
    overlap = stories.count <= OVERLAP_MAX_STORIES
    if not overlap:
        save_state()
    loader.load((entry for feed in plan.stale for entry in feed.chosen),
                meanwhile=save_state if overlap else None)
    archived: list[FeedResult] = []
    archive_failures: list[Failure] = []
    for months in plan.archives.values():  # before the feeds: a feed never links to a missing month
        done_months, failed_months = archive.write_archives(
            config, months, cache, loader, write=write, allow_shrink=allow_shrink)
        archived.extend(done_months)
        archive_failures.extend(failed_months)
    not_due = [c.id for c in config.channels if c not in building]
    pages = stale_site_pages(config, plan.selections, plan.lines, cache, write, not_due)
    loader.load(entry for page in pages for entry in page.previewed or ())
    # Rendering feeds and pages is CPU work that needs only the loaded articles: it runs
    # in worker processes forked after they were loaded (see workers.map_forked). Each
    # feed is written as soon as it is rendered, while the workers render the next
    # ones: writing (and fsyncing) 33 feeds took a cold 10k build 30-40 ms after the
    # last one was rendered.
    jobs = [(feed.channel, feed.fmt, loader.articles(feed.chosen), archive.subscription_history(
        site, plan.archives.get(feed.channel.id), feed.fmt)) for feed in plan.stale]
    page_jobs = [(page.name, plan.selections, page.articles(loader)) for page in pages]
    with closing(map_forked(partial(_render_job, config), [*jobs, *page_jobs],
                            sum(len(items) for _c, _f, items, _h in jobs)
                            + sum(len(items) for _n, _s, items in page_jobs),
                            RENDER_PARALLEL_MIN)) as rendered:
        results, feed_failures = _write_feeds(
            plan.stale, [items for _c, _f, items, _h in jobs], islice(rendered, len(jobs)),
            cache, loader, write=write, allow_shrink=allow_shrink)
        # The site pages describe the feeds: after a feed failed, they stay as they were.
        # (Their jobs come after the feeds': this is known before the first page is done.)
        page_failures = write_site_pages(pages, rendered, cache, write and not feed_failures)
    results = plan.unchanged + results
    failures = [*feed_failures, *page_failures, *archive_failures]
    if write:
        loader.keep(entry for _channel, chosen in plan.selections for entry in chosen)
        # a channel counts as built when every one of its feeds is in place
        done = Counter(result.channel for result in results)
        for channel in building:
            if done[channel.id] == len(channel.formats):
                cache.put_build(channel.id, now.astimezone(UTC))
    cache.commit()
    notified, hub_failed = (_announce(config, cache, results) if write and notify and site.hub
                            else ((), ()))
    report = BuildReport(
        files_seen=stories.files,
        articles=stories.count,
        problems=(*stories.problems, *loader.problems),
        feeds=tuple(results),
        failures=tuple(failures),
        files_parsed=stories.parsed,
        archives=tuple(archived),
        hub_notified=notified,
        hub_failed=hub_failed,
        probed=loader.sizer.asked if loader.sizer else 0,
        probe_failures=tuple(loader.sizer.failures.items()) if loader.sizer else (),
    )
    repeatable = (write and not failures and not hub_failed and not stories.time_sensitive
                  and not site.probe_enclosures)
    return report, repeatable, stories.listing


@dataclass(frozen=True, slots=True)
class _StaleFeed:
    """A feed whose inputs differ from those of the file on disk: to render."""

    channel: Channel
    fmt: Format
    path: Path
    digest: str  # of its inputs (feed_digest), kept in the cache once it is written
    chosen: list[Entry]  # the channel's items


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a build has to do, found before any article is parsed."""

    selections: list[tuple[Channel, list[Entry]]]  # every channel's items, by channel id
    lines: dict[str, str]  # channel id → what its feeds and pages depend on of its items
    archives: dict[str, archive.Plan]  # the months of channels built with archive: monthly
    stale: list[_StaleFeed]
    unchanged: list[FeedResult]  # feeds left as they are: same inputs, file untouched


def _plan(config: Config, stories: Stories, cache: Cache, building: Sequence[Channel],
          write: bool) -> _Plan:
    site = config.site
    selections: list[tuple[Channel, list[Entry]]] = []
    lines: dict[str, str] = {}
    archives: dict[str, archive.Plan] = {}
    stale: list[_StaleFeed] = []
    unchanged: list[FeedResult] = []
    for channel in config.channels:
        chosen = stories.select(channel)
        selections.append((channel, chosen))
        lines[channel.id] = entry_lines(chosen)
        if channel not in building:
            continue  # not due: its feeds are left as they are
        if channel.archive == "monthly":
            archives[channel.id] = archive.plan(stories.ordered(), channel, site.timezone)
        for fmt in channel.formats:
            name = f"{channel.id}{FILE_SUFFIX[fmt]}"
            path = site.output / name
            digest = feed_digest(config, channel, fmt, lines[channel.id],
                                 archive.subscription_history(site, archives.get(channel.id), fmt))
            kept = cache.feed(name)
            if write and kept and kept[0] == digest and signature(path) == kept[1:3]:
                # Same inputs as the feed on disk, which nobody touched: nothing to do.
                unchanged.append(FeedResult(channel.id, fmt, path, len(chosen) - kept[3],
                                            False, kept[3]))
            else:
                stale.append(_StaleFeed(channel, fmt, path, digest, chosen))
    # Listed by id: the pages must not depend on the order of keys in the YAML (tools
    # that rewrite a config, such as yaml.safe_dump, sort them).
    selections.sort(key=lambda selection: selection[0].id)
    return _Plan(selections, lines, archives, stale, unchanged)


def _write_feeds(stale: Sequence[_StaleFeed], items: Sequence[Sequence[Article]],
                 rendered: Iterable[tuple[bytes, int] | str], cache: Cache,
                 loader: _ArticleLoader, *, write: bool, allow_shrink: bool
                 ) -> tuple[list[FeedResult], list[Failure]]:
    """Write each rendered feed (`items`: the articles it was rendered from), unless it
    failed to render or would shrink too much; record what went into it."""
    results: list[FeedResult] = []
    failures: list[Failure] = []
    for feed, articles, outcome in zip(stale, items, rendered, strict=True):
        try:
            if isinstance(outcome, str):
                raise RenderError(feed.channel.id, feed.fmt, outcome)
            data, dropped = outcome
            reason = (None if allow_shrink
                      else shrink_reason(feed.path, feed.fmt, feed.channel, len(feed.chosen)))
            if reason:
                raise OutputError(str(feed.path), reason)
            written = write_if_changed(feed.path, data) if write else False
        except (RenderError, OutputError) as e:
            failures.append(Failure.of(feed.path, e))
            continue
        if write:
            size, mtime_ns = signature(feed.path)
            # A feed rendered before all its images were probed is rendered again next time.
            cache.put_feed(feed.path.name, feed.digest if loader.settled(articles) else "",
                           size, mtime_ns, dropped)
        results.append(FeedResult(feed.channel.id, feed.fmt, feed.path,
                                  len(feed.chosen) - dropped, written, dropped))
    return results, failures


def entry_lines(chosen: Sequence[Entry]) -> str:
    """What a rendered file depends on of these entries (Entry.rendered_key), made once
    per channel: its three feeds and the site pages all use it."""
    return "\n".join(e.rendered_key() for e in chosen)


def feed_digest(config: Config, channel: Channel, fmt: Format, lines: str,
                history: archive.History | None = None) -> str:
    """Everything a feed's bytes depend on (`lines`: entry_lines of its items). Equal
    digests mean equal feeds."""
    site = config.site
    parts = [__version__, fmt, repr(channel), site.base_url, site.title, site.hub or "",
             site.schedule or "",  # the RSS <ttl> comes from the channel's or the site's
             str(site.probe_enclosures), repr(history)]
    if lines:
        parts.append(lines)
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


class _ArticleLoader:
    """The second pass, for the entries that made it into a feed: each file is read again
    and its HTML parsed once per build, however many channels carry it, on every core
    when there are many. Only these full articles are held in memory, never the whole
    archive's.

    The articles of the last build's feeds and pages are kept in the cache under their
    entry (which holds the file's path, content hash and dates, so an entry that is the
    same means an article that is the same): a new story re-renders its channels without
    parsing their other articles again. keep() at the end of a build forgets the others.

    With a sizer (enclosure probing), the articles it gives out carry their images'
    probed lengths and types."""

    def __init__(self, config: Config, cache: Cache, sizer: Sizer | None = None) -> None:
        self.config = config
        self.cache = cache
        self.loaded: dict[str, Article | None] = {}
        self.problems: list[Problem] = []
        self.sizer = sizer
        # The body without images only when some channel sends images as enclosures only.
        self.without_images = any(c.images == "enclosure" for c in config.channels)
        # path → article_key (a build has one entry a path): keep(), at the end of the
        # build, needs the keys of the entries loaded, and each is the entry's repr hashed.
        self._keys: dict[str, str] = {}

    def load(self, entries: Iterable[Entry], keep: bool = True,
             meanwhile: Callable[[], None] | None = None) -> None:
        """Load these entries' articles: from the cache, or parsed (and then, with `keep`,
        added to the cache). `meanwhile`, when given, is called once, while the workers
        parse: the main process's own work, done when it would otherwise wait."""
        wanted = list({e.path: e for e in entries if e.path not in self.loaded}.values())
        keys = {entry.path: self._key(entry) for entry in wanted}
        kept = self.cache.articles(list(keys.values())) if wanted else {}
        todo = []
        for entry in wanted:
            article = _unpickled_article(kept.get(keys[entry.path]))
            if article is None:
                todo.append(entry)
            else:
                self.loaded[entry.path] = article
        site = self.config.site
        jobs = [(str(site.source), site.encodings, self.without_images, todo[i:i + 32])
                for i in range(0, len(todo), 32)]
        parsed: list[tuple[str, bytes]] = []
        with started(_second_pass, jobs, len(todo)) as batches:
            if meanwhile:
                meanwhile()
            for batch in batches:
                for entry, pickled, reason in batch:
                    # Articles travel pickled, and the cache keeps those very bytes.
                    self.loaded[entry.path] = pickle.loads(pickled) if pickled else None
                    if reason:
                        self.problems.append(Problem(str(site.source / entry.path), reason,
                                                     skipped=True))
                    elif keep:
                        parsed.append((keys[entry.path], pickled))
        self.cache.put_articles(parsed)

    def keep(self, entries: Iterable[Entry]) -> None:
        """Keep in the cache only the articles of these entries (those of every feed and
        page as this build left them)."""
        self.cache.keep_articles({self._key(entry) for entry in entries})

    def _key(self, entry: Entry) -> str:
        key = self._keys.get(entry.path)
        if key is None:
            key = self._keys[entry.path] = article_key(entry, self.without_images)
        return key

    def articles(self, entries: Sequence[Entry]) -> list[Article]:
        self.load(entries)
        found = [a for a in (self.loaded[e.path] for e in entries) if a is not None]
        return self.sizer.sized(found) if self.sizer else found

    def transient(self, entries: Sequence[Entry]) -> list[Article]:
        """Like articles(), but what this call had to load is let go afterwards: an archive
        month's full text is held while the month is written, never the whole history.
        (Files that failed stay remembered, so each is reported once.)"""
        fresh = [e.path for e in entries if e.path not in self.loaded]
        try:
            self.load(entries, keep=False)
            return self.articles(entries)
        finally:
            for path in fresh:
                if self.loaded.get(path) is not None:
                    del self.loaded[path]

    def settled(self, articles: Sequence[Article]) -> bool:
        """False when some image of these articles still waits to be probed."""
        return self.sizer is None or self.sizer.settled(articles)

    def exhausted(self) -> bool:
        """This build has no probing time left."""
        return self.sizer is not None and self.sizer.exhausted


def article_key(entry: Entry, without_images: bool) -> str:
    """What the second pass makes of an entry depends on the entry alone (its file's path,
    content hash and dates among its fields), on whether the body without images was
    asked for, and on the parse settings (a change of which empties the cache)."""
    return hashlib.sha256(f"{entry!r}|{without_images}".encode("utf-8", "surrogatepass")
                          ).hexdigest()[:32]


def _unpickled_article(data: bytes | None) -> Article | None:
    if data is None:
        return None
    try:
        article = pickle.loads(data)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError,
            ValueError, IndexError):
        return None  # unreadable: parsed again
    return article if isinstance(article, Article) else None


def _sizer(config: Config, cache: Cache, now: datetime) -> Sizer | None:
    if not config.site.probe_enclosures:
        return None
    from syndicate.probe import Sizer

    return Sizer(cache, now, config.site.probe_private)


def _announce(config: Config, cache: Cache, results: Sequence[FeedResult]
              ) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Tell the WebSub hub of every feed written this run, and of those it could not be
    told of last time; remember the ones it cannot be told of now for the next build."""
    from syndicate.publish import notify_hub

    site = config.site
    assert site.hub
    feeds = {site.feed_url(c.id, fmt) for c in config.channels for fmt in c.formats}
    topics = [url for url in cache.pending_pings() if url in feeds]
    topics.extend(site.feed_url(r.channel, r.fmt) for r in results if r.written)
    outcome = notify_hub(site.hub, topics)
    cache.set_pending_pings([url for url, _ in outcome.failed])
    cache.commit()
    return outcome.notified, outcome.failed


def _second_pass(job: tuple[str, Sequence[str], bool, Sequence[Entry]]
                 ) -> list[tuple[Entry, bytes, str]]:
    """Worker: full articles for a few entries, with the merged dates, each pickled; a
    file that vanished, or no longer reads as an article, since it was indexed gives b""
    and the reason."""
    from syndicate.content import article_from  # lxml and nh3, only when rendering

    source, encodings, without_images, entries = job
    out: list[tuple[Entry, bytes, str]] = []
    for entry in entries:
        try:
            with open(os.path.join(source, entry.path), "rb") as handle:
                data = handle.read()
            body = read_body(data, entry.path, encodings)
        except ArticleError as e:
            out.append((entry, b"", e.reason))
            continue
        except OSError as e:
            out.append((entry, b"", f"cannot read: {e.strerror or e}"))
            continue
        # (article_from gives the article the entry's dates: those merge_captures and
        # the ledger settled.)
        out.append((entry, pickle.dumps(article_from(entry, body, without_images=without_images),
                                        protocol=5), ""))
    return out


# --- site pages: index.opml, index.html and each channel's <id>.html ------------------------

@dataclass(frozen=True, slots=True)
class _Page:
    """A site page to render: its path, the digest of its inputs, and for a channel's
    preview page, the entries whose articles it shows."""

    path: Path
    digest: str
    previewed: Sequence[Entry] | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def articles(self, loader: _ArticleLoader) -> list[Article]:
        return loader.articles(self.previewed) if self.previewed is not None else []


def stale_site_pages(config: Config, selections: Sequence[tuple[Channel, Sequence[Entry]]],
                     lines: Mapping[str, str], cache: Cache, write: bool,
                     not_due: Collection[str] = ()) -> list[_Page]:
    """The OPML list, the front page and each channel's preview page are handled like the
    feeds: not even rendered when their inputs are those of the files on disk. These are
    the ones to render (with write=False, for `check`, all of them). `lines`: entry_lines
    of each channel's selection, by channel id.

    A channel that a `build --due` run left alone (`not_due`) keeps its preview page as
    it is, beside its feeds; the front page and the OPML list describe every channel."""
    site = config.site
    every = [channel for channel, _chosen in selections]
    pages: list[tuple[str, Sequence[Channel], Sequence[Entry] | None]]
    pages = [("index.opml", every, None), ("index.html", every, None)]
    pages.extend((f"{channel.id}.html", [channel], chosen)
                 for channel, chosen in selections if channel.id not in not_due)
    stale: list[_Page] = []
    for name, channels, previewed in pages:
        path = site.output / name
        digest = page_digest(config, name, channels, lines)
        kept = cache.feed(name)
        if not (write and kept and kept[0] == digest and signature(path) == kept[1:3]):
            stale.append(_Page(path, digest, previewed))
    return stale


def write_site_pages(pages: Sequence[_Page], rendered: Iterable[tuple[bytes, int] | str],
                     cache: Cache, write: bool) -> list[Failure]:
    """Write the pages as rendered (bytes, or why not) through write_if_changed. With
    write=False they are not written: for `check`, and after a feed of this run failed,
    since the pages describe the feeds and a failed run leaves the last good output in
    place. Returns the pages that could not be rendered or written."""
    failures: list[Failure] = []
    for page, outcome in zip(pages, rendered, strict=True):
        if isinstance(outcome, str):
            failures.append(Failure(str(page.path), outcome))
            continue
        try:
            if write:
                write_if_changed(page.path, outcome[0])
        except OutputError as e:
            failures.append(Failure.of(page.path, e))
            continue
        if write:
            size, mtime_ns = signature(page.path)
            cache.put_feed(page.name, page.digest, size, mtime_ns, 0)
    return failures


def page_digest(config: Config, name: str, channels: Sequence[Channel],
                lines: Mapping[str, str]) -> str:
    """Everything a site page about these channels depends on (`lines`: entry_lines of
    each channel's selection, by id). Equal digests mean equal pages."""
    site = config.site
    parts = [__version__, name, site.title, site.base_url, site.timezone]
    for channel in channels:
        parts.append(repr(channel))
        if lines[channel.id]:
            parts.append(lines[channel.id])
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _render_page(config: Config, name: str, selections: Sequence[tuple[Channel, Sequence[Entry]]],
                 previewed: Sequence[Article]) -> bytes:
    """A site page's bytes, parsed back (a page that does not parse is never written).
    `previewed`: the articles of a channel's preview page."""
    import lxml.etree  # the rendering stack only when a page is rendered, as in render_feed

    from syndicate.render import html, opml
    from syndicate.render.site import Listing

    def listing(channel: Channel, chosen: Sequence[Entry]) -> Listing:
        return Listing(channel, len(chosen), chosen[0].published if chosen else None,
                       max((e.updated or e.captured for e in chosen), default=None))

    site = config.site
    if name == "index.opml":
        data = opml.render(site, [listing(channel, chosen) for channel, chosen in selections])
    elif name == "index.html":
        data = html.render_index(site, [listing(channel, chosen) for channel, chosen in selections])
    else:
        [(channel, chosen)] = [(c, e) for c, e in selections if f"{c.id}.html" == name]
        data = html.render_preview(site, listing(channel, chosen), previewed)
    try:
        lxml.etree.fromstring(data)  # never write a page that does not parse
    except lxml.etree.XMLSyntaxError as e:
        raise ValueError(f"the page does not parse back: {e}") from e
    return data
