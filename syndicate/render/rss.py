"""RSS 2.0 with content:encoded, dc:creator and Media RSS; for a channel built on a
schedule, <ttl> and the Syndication module tell readers how often to come back."""

from __future__ import annotations

import html
from collections.abc import Sequence

import lxml.etree

from syndicate.model import Article, Channel, Image, Site
from syndicate.render import feedgen_base
from syndicate.render.common import enclosures, serialize, summary
from syndicate.render.site import preview_url
from syndicate.schedule import PollHint, effective, poll_hint

ATOM = "http://www.w3.org/2005/Atom"
MEDIA = "http://search.yahoo.com/mrss/"
SY = "http://purl.org/rss/1.0/modules/syndication/"


def render(site: Site, channel: Channel, items: Sequence[Article]) -> bytes:
    self_url = site.feed_url(channel.id, "rss")
    fg = feedgen_base.build(site, channel, items, self_url, "application/rss+xml")
    hint = poll_hint(effective(site, channel))
    if hint:
        fg.ttl(hint.ttl)  # feedgen writes <ttl> only when set
    root = feedgen_base.rss_tree(fg)
    channel_el = root.find("channel")
    assert channel_el is not None
    if site.hub:  # feedgen writes only the first atom:link of a channel (rel=self)
        self_link = channel_el.find(f"{{{ATOM}}}link")
        assert self_link is not None
        self_link.addnext(lxml.etree.Element(f"{{{ATOM}}}link", rel="hub", href=site.hub))
    # The channel's preview page, for people who open the feed in a browser: see
    # render/site.py (preview_url) for why this is a rel="related" link.
    channel_el.findall(f"{{{ATOM}}}link")[-1].addnext(lxml.etree.Element(
        f"{{{ATOM}}}link", href=preview_url(site, channel), rel="related", type="text/html"))
    for item, article in zip(channel_el.iter("item"), items, strict=True):
        # Readers take an RSS description as HTML, so the plain-text summary is escaped:
        # "利率<3%" or a visible "<b>" must show as written, never become markup.
        description = item.find("description")
        if description is not None:
            description.text = html.escape(summary(article, channel), quote=False)
        _add_images(item, enclosures(article, channel))
    if hint:
        _add_syndication(root, hint)
    return serialize(root)


def _add_images(item: lxml.etree._Element, images: Sequence[Image]) -> None:
    """One <enclosure> (RSS allows one: the first image, the lead where there is one),
    then Media RSS for every image with its caption and credit, and the first image as
    the item's media:thumbnail, which list views show."""
    if not images:
        return
    first = images[0]
    lxml.etree.SubElement(item, "enclosure", url=first.url, length=str(first.length), type=first.mime)
    for image in images:
        content = lxml.etree.SubElement(item, f"{{{MEDIA}}}content", url=image.url,
                                        type=image.mime, medium="image")
        if image.length:
            content.set("fileSize", str(image.length))
        if image.width and image.height:
            content.set("width", str(image.width))
            content.set("height", str(image.height))
        if image.caption:
            description = lxml.etree.SubElement(content, f"{{{MEDIA}}}description", type="plain")
            description.text = image.caption
        if image.credit:
            lxml.etree.SubElement(content, f"{{{MEDIA}}}credit").text = image.credit
    thumbnail = lxml.etree.SubElement(item, f"{{{MEDIA}}}thumbnail", url=first.url)
    if first.width and first.height:
        thumbnail.set("width", str(first.width))
        thumbnail.set("height", str(first.height))


def _add_syndication(root: lxml.etree._Element, hint: PollHint) -> None:
    """sy:updatePeriod and sy:updateFrequency after <ttl>, with xmlns:sy on the root.
    feedgen's own syndication extension is not used: it writes `sy:UpdatePeriod` and
    `sy:UpdateFrequency`, which the module does not define, and the frequency as the
    text "None" when it is not set."""
    ttl = root.find("channel/ttl")
    assert ttl is not None
    period = lxml.etree.Element(f"{{{SY}}}updatePeriod")
    period.text = hint.period
    frequency = lxml.etree.Element(f"{{{SY}}}updateFrequency")
    frequency.text = str(hint.frequency)
    ttl.addnext(period)
    period.addnext(frequency)
    lxml.etree.cleanup_namespaces(root, top_nsmap={"sy": SY}, keep_ns_prefixes=[p for p in root.nsmap if p])
