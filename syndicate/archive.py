"""RFC 5005 archived feeds for channels with `archive: monthly`.

A channel's history is cut into calendar months in the site's time zone. The month of
the channel's newest item is the current month: its items are in the subscription feed
(`<id>.xml`). Every earlier month that has items gets archive documents, one per format
the channel has: `<id>/2024-05.xml`, `<id>/2024-05.atom`, `<id>/2024-05.json`.

- Which months: decided by the items, never by the clock, so the same archive always
  gives the same documents. A month becomes an archive when the channel's first item of
  a later month arrives.
- What links where: the subscription feed links `prev-archive` to the newest archive
  month; each archive document is marked `<fh:archive/>`, links `self` to itself,
  `current` to the subscription feed, `prev-archive` to the month before it and
  `next-archive` to the month after it (months without items are skipped). A reader
  backfills by walking prev-archive from the subscription feed.
- When a document changes. Its bytes depend only on its own items and its two
  neighbours' addresses, so it changes when an item in it changes (an edit, or a story
  re-dated into the month), and once more when it is the newest archive month and the
  next month is archived: it then gains its `next-archive` link. RFC 5005 asks for that
  link "unless there are no following archives available", and the W3C validator warns
  about an archive with neither link, which every oldest month would be without it.
  The set of items in a month never changes on that account, which is what RFC 5005
  asks to stay stable. Archives carry no WebSub hub and no polling hints: nobody
  subscribes to them.
- JSON Feed has no archive marker. Its own pagination field `next_url` ("the next n
  items", that is older ones) carries the prev-archive chain, `feed_url` keeps naming
  the subscription feed (RFC 5005's `current`), and archive documents carry an
  `_rfc5005` extension object `{"about": …, "archive": true}`, which the JSON Feed
  spec tells readers to ignore when they do not know it. JSON Feed has no link to newer
  items, so JSON archives have no next-archive and change only with their items.
- Size: a month holds all its items (no `limit`). If they do not fit the channel's
  `max_bytes`, the month is split into parts, newest items first: `2024-05.xml`,
  `2024-05-2.xml`, … chained like months (the last part's prev-archive is the month
  before). The split depends only on the month's items, so it is as stable as they are.
- Work: a month's documents are rendered only when a digest of their inputs differs
  from the cache's (or their files were touched), and their full text is loaded one
  month at a time, never the whole history at once.
"""

from __future__ import annotations

import hashlib
import json
import re
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from syndicate import __version__
from syndicate.cache import ArchiveRecord, Cache
from syndicate.errors import OutputError, RenderError
from syndicate.model import FILE_SUFFIX, Article, Channel, Config, Entry, Failure, FeedResult, Format, Site
from syndicate.output import remove_leftovers, signature, write_if_changed
from syndicate.select import fit_budget, wanted

FH = "http://purl.org/syndication/history/1.0"
ATOM = "http://www.w3.org/2005/Atom"
RFC5005 = "https://www.rfc-editor.org/rfc/rfc5005#section-4"
MONTH_KEY = re.compile(r"\d{4}-\d{2}\Z")
# Kept before a month's digest when it was rendered before all its images were probed:
# it is rendered again once there is probing time to ask about them.
UNSETTLED = "?"
MIME: dict[Format, str] = {"rss": "application/rss+xml", "atom": "application/atom+xml",
                           "json": "application/feed+json"}


@dataclass(frozen=True, slots=True)
class Month:
    key: str  # "2024-05": the month in the site's time zone
    entries: tuple[Entry, ...]  # the channel's items published in it, newest first


@dataclass(frozen=True, slots=True)
class Plan:
    channel: Channel
    archived: tuple[Month, ...]  # every month before the newest item's month, newest first


@dataclass(frozen=True, slots=True)
class History:
    """The RFC 5005 links of one document."""

    prev_archive: str | None  # the next older archive document of the same format
    current: str | None = None  # archive documents only: the subscription feed's URL
    self_url: str | None = None  # archive documents only: the document's own URL
    next_archive: str | None = None  # archive documents only: the next newer one, if any

    @property
    def archive(self) -> bool:
        return self.current is not None


class Loader(Protocol):
    """What build.py's article loader offers: full articles for a month's entries,
    without keeping them once the month is written."""

    def transient(self, entries: Sequence[Entry]) -> list[Article]: ...

    def settled(self, articles: Sequence[Article]) -> bool: ...

    def exhausted(self) -> bool: ...


def plan(ordered: Sequence[Entry], channel: Channel, timezone: str) -> Plan:
    """The channel's archive months. `ordered` is the whole archive, newest first."""
    zone = zoneinfo.ZoneInfo(timezone)
    months: dict[str, list[Entry]] = {}
    for entry in ordered:
        if wanted(entry, channel):
            moment = entry.published.astimezone(zone)
            months.setdefault(f"{moment.year:04d}-{moment.month:02d}", []).append(entry)
    # newest first, since `ordered` is: the first month is the current one
    return Plan(channel, tuple(Month(key, tuple(entries)) for key, entries in list(months.items())[1:]))


def name(channel: Channel, key: str, fmt: Format, part: int = 1) -> str:
    """The document's path inside the output folder, which is also its URL path."""
    assert MONTH_KEY.match(key), key  # generated, never taken from input: it cannot climb out
    return f"{channel.id}/{key}{'' if part == 1 else f'-{part}'}{FILE_SUFFIX[fmt]}"


def subscription_history(site: Site, archive: Plan | None, fmt: Format) -> History | None:
    """The subscription feed's link to the newest archive month, if there is one."""
    if archive is None or not archive.archived:
        return None
    return History(prev_archive=site.base_url + name(archive.channel, archive.archived[0].key, fmt))


def write_archives(config: Config, archive: Plan, cache: Cache, loader: Loader, *, write: bool,
                   allow_shrink: bool) -> tuple[list[FeedResult], list[Failure]]:
    """Render and write every archive month whose inputs changed since it was written.
    With write=False (`check`) every month is rendered and nothing is written."""
    site, channel = config.site, archive.channel
    results: list[FeedResult] = []
    failures: list[Failure] = []
    if write:
        remove_leftovers(site.output / channel.id)
    # Newest month first: a month links next-archive to the newer month's last part, so
    # the newer month's split must be known first.
    newer: dict[Format, str] = {}  # the newer month's last part, per format
    for index, month in enumerate(archive.archived):
        older = archive.archived[index + 1].key if index + 1 < len(archive.archived) else None
        stale: list[tuple[Format, str, ArchiveRecord | None, str | None]] = []
        # JSON Feed has no link to newer items: a JSON archive does not depend on them.
        following: dict[Format, str | None] = {fmt: newer.get(fmt) if fmt != "json" else None
                                               for fmt in channel.formats}
        for fmt in channel.formats:
            first = name(channel, month.key, fmt)
            digest = month_digest(config, channel, fmt, month, older, following[fmt])
            kept = cache.archive(first)
            newer[fmt] = name(channel, month.key, fmt, len(kept.parts) if kept else 1)
            # A month waiting for image sizes is not rendered again while this build has no
            # probing time left: it would come out the same.
            same = kept is not None and (kept.digest == digest or (
                kept.digest == UNSETTLED + digest and loader.exhausted()))
            if write and kept and same and _unchanged(site, channel, month, fmt, kept):
                results.append(FeedResult(channel.id, fmt, site.output / first, kept.items, False))
            else:
                stale.append((fmt, digest, kept, following[fmt]))
        if not stale:
            continue
        items = loader.transient(month.entries)  # this month's full text, and only this month's
        for fmt, digest, kept, after in stale:
            path = site.output / name(channel, month.key, fmt)
            try:
                if kept and not allow_shrink and len(items) < kept.items / 2:
                    raise OutputError(str(path), f"would shrink from {kept.items} to {len(items)} "
                                      "items, which looks like lost articles; use --allow-shrink "
                                      "if it is intended")
                parts = render_month(site, channel, fmt, month.key, older, after, items)
                newer[fmt] = name(channel, month.key, fmt, len(parts))
                written = _write_parts(site, channel, month.key, fmt, parts) if write else False
            except (RenderError, OutputError) as e:
                failures.append(Failure.of(path, e))
                continue
            if write:
                stats = tuple(signature(site.output / name(channel, month.key, fmt, n))
                              for n in range(1, len(parts) + 1))
                cache.put_archive(name(channel, month.key, fmt),
                                  ArchiveRecord(digest if loader.settled(items) else UNSETTLED + digest,
                                                len(items), stats))
            results.append(FeedResult(channel.id, fmt, path, len(items), written))
        if write:
            cache.commit()  # a long first build keeps its progress if it is interrupted
    return results, failures


def month_digest(config: Config, channel: Channel, fmt: Format, month: Month,
                 older: str | None, newer: str | None) -> str:
    """Everything a month's documents depend on: its items and its neighbours (the key of
    the month before, the name of the newer month's last part). The channel's `limit`
    and `schedule` and the site's hub are left out: archive documents do not use them."""
    site = config.site
    parts = [__version__, "archive", fmt, repr(replace(channel, limit=1, schedule=None)),
             site.base_url, site.title, site.timezone, str(site.probe_enclosures), month.key,
             older or "", newer or ""]
    parts.extend(e.rendered_key() for e in month.entries)
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def render_month(site: Site, channel: Channel, fmt: Format, key: str, older: str | None,
                 newer: str | None, items: Sequence[Article]) -> list[bytes]:
    """The month's documents: one, or several parts when its items do not fit max_bytes.
    `older` is the key of the month before, `newer` the name of the next month's last
    part. Each document is parsed back before it is returned."""
    import lxml.etree

    from syndicate.render import RENDERERS  # the rendering stack only when rendering

    renderer = RENDERERS[fmt]
    # No hub (nobody subscribes to an archive) and no polling hints (it does not change).
    quiet_site = replace(site, hub=None, schedule=None)
    quiet_channel = replace(channel, schedule=None)
    current = site.feed_url(channel.id, fmt)
    month_before = site.base_url + name(channel, older, fmt) if older else None

    def render(part: int, previous: str | None) -> Callable[[Sequence[Article]], bytes]:
        if fmt == "json":
            following = None
        elif part == 1:
            following = site.base_url + newer if newer else None
        else:
            following = site.base_url + name(channel, key, fmt, part - 1)
        history = History(previous, current, site.base_url + name(channel, key, fmt, part),
                          following)
        return lambda keep: decorate(renderer(quiet_site, quiet_channel, keep), fmt, history)

    parts: list[bytes] = []
    remaining = list(items)
    try:
        while True:
            part = len(parts) + 1
            data = render(part, month_before)(remaining)
            if len(data) <= channel.max_bytes or len(remaining) <= 1:
                parts.append(_parsed(data, fmt))
                return parts
            # Too large for one document: this part takes the newest items that fit.
            following = site.base_url + name(channel, key, fmt, part + 1)
            data, dropped = fit_budget(remaining, render(part, following), channel.max_bytes)
            keep = min(max(1, len(remaining) - dropped), len(remaining) - 1)
            if keep != len(remaining) - dropped:
                data = render(part, following)(remaining[:keep])
            parts.append(_parsed(data, fmt))
            remaining = remaining[keep:]
    except (ValueError, TypeError, lxml.etree.LxmlError) as e:
        raise RenderError(channel.id, fmt, str(e)) from e


def decorate(data: bytes, fmt: Format, history: History) -> bytes:
    """Add the RFC 5005 links (and the archive marker) to a rendered document."""
    if fmt == "json":
        return _decorate_json(data, history)
    import lxml.etree

    from syndicate.render.common import serialize

    root = lxml.etree.fromstring(data)
    head = root.find("channel") if fmt == "rss" else root
    assert head is not None
    link = f"{{{ATOM}}}link"
    anchor = next(e for e in head.iterchildren(link) if e.get("rel") == "self")
    added: list[lxml.etree._Element] = []
    if history.archive:
        anchor.set("href", history.self_url or "")
        added.append(lxml.etree.Element(link, rel="current", href=history.current or "",
                                        type=MIME[fmt]))
    if history.prev_archive:
        added.append(lxml.etree.Element(link, rel="prev-archive", href=history.prev_archive,
                                        type=MIME[fmt]))
    if history.next_archive:
        added.append(lxml.etree.Element(link, rel="next-archive", href=history.next_archive,
                                        type=MIME[fmt]))
    if history.archive:
        added.append(lxml.etree.Element(f"{{{FH}}}archive"))
    for element in added:
        element.tail = anchor.tail  # keep the pretty-printed indentation
        anchor.addnext(element)
        anchor = element
    if history.archive:
        lxml.etree.cleanup_namespaces(root, top_nsmap={"fh": FH},
                                      keep_ns_prefixes=[p for p in root.nsmap if p])
    return serialize(root)


def _decorate_json(data: bytes, history: History) -> bytes:
    feed: dict[str, Any] = json.loads(data)
    out: dict[str, Any] = {}
    for key, value in feed.items():
        if key == "items" and history.archive:
            out["_rfc5005"] = {"about": RFC5005, "archive": True}
        out[key] = value
        if key == "feed_url" and history.prev_archive:
            out["next_url"] = history.prev_archive  # JSON Feed's "older items" link
    return (json.dumps(out, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _parsed(data: bytes, fmt: Format) -> bytes:
    """`data`, after checking that it parses back (never write a document that does not)."""
    if fmt == "json":
        json.loads(data)
        return data
    from syndicate.render.common import well_formed

    return well_formed(data)


def _write_parts(site: Site, channel: Channel, key: str, fmt: Format, parts: Sequence[bytes]) -> bool:
    """Write the month's parts; remove parts left from an earlier, longer split."""
    written = [write_if_changed(site.output / name(channel, key, fmt, n), data)
               for n, data in enumerate(parts, start=1)]
    extra = len(parts) + 1
    while (site.output / name(channel, key, fmt, extra)).is_file():
        try:
            (site.output / name(channel, key, fmt, extra)).unlink()
        except OSError as e:
            raise OutputError(str(site.output / name(channel, key, fmt, extra)),
                              f"cannot remove a part left from before: {e.strerror}") from e
        extra += 1
    return any(written) or extra > len(parts) + 1


def _unchanged(site: Site, channel: Channel, month: Month, fmt: Format, kept: ArchiveRecord) -> bool:
    """The month's part files are those the cache recorded, untouched since."""
    return all(signature(site.output / name(channel, month.key, fmt, n)) == stat
               for n, stat in enumerate(kept.parts, start=1))


