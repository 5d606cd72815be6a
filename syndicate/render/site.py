"""What the site pages (index.opml, index.html and the <id>.html previews) share: a
channel's listing, and the links to its feeds and its preview page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from syndicate.model import FILE_SUFFIX, Channel, Format, Site
from syndicate.render.common import self_type

FORMAT_LABELS: dict[Format, str] = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}


@dataclass(frozen=True, slots=True)
class Listing:
    """One channel as the front page and the OPML list describe it."""

    channel: Channel
    items: int  # how many items its feeds carry (its selection after `limit`)
    newest: datetime | None  # the newest item's publication; None for an empty channel
    updated: datetime | None  # the newest `updated` among its items: the feeds' own time


@dataclass(frozen=True, slots=True)
class FeedLink:
    fmt: Format
    href: str  # relative to the output folder, so pages work wherever the folder is served
    url: str  # the public URL, from base_url
    mime: str
    label: str  # "RSS", "Atom", "JSON Feed"


def feed_links(site: Site, channel: Channel) -> tuple[FeedLink, ...]:
    """The channel's feeds, in the order its `formats` gives."""
    return tuple(
        FeedLink(fmt, f"{channel.id}{FILE_SUFFIX[fmt]}", site.feed_url(channel.id, fmt),
                 self_type(fmt), FORMAT_LABELS[fmt])
        for fmt in channel.formats
    )


def preview_href(channel: Channel) -> str:
    """The channel's preview page, relative to the output folder."""
    return f"{channel.id}.html"


def preview_url(site: Site, channel: Channel) -> str:
    """The channel's preview page at its public address.

    RSS and Atom feeds link to it with `rel="related"`, at feed level: `alternate` is
    taken (it is the channel's own web page, which readers show as the feed's site), and
    an `<?xml-stylesheet?>` that turns the feed into a page in the browser would be XSLT,
    which browsers are dropping. A related link is valid in both formats (the W3C
    validator accepts it), readers ignore it, and a person reading the feed's source
    finds the readable version. JSON Feed has no field for it, so it has none."""
    return f"{site.base_url}{preview_href(channel)}"
