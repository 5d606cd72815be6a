"""RSS 2.0 with content:encoded, dc:creator and Media RSS."""

from __future__ import annotations

import html
from collections.abc import Sequence

import lxml.etree

from syndicate.model import Article, Channel, Image, Site
from syndicate.render import feedgen_base
from syndicate.render.common import enclosures, serialize

ATOM = "http://www.w3.org/2005/Atom"
MEDIA = "http://search.yahoo.com/mrss/"


def render(site: Site, channel: Channel, items: Sequence[Article]) -> bytes:
    self_url = site.feed_url(channel.id, "rss")
    fg = feedgen_base.build(site, channel, items, self_url, "application/rss+xml")
    root = lxml.etree.fromstring(fg.rss_str())
    channel_el = root.find("channel")
    assert channel_el is not None
    if site.hub:  # feedgen writes only the first atom:link of a channel (rel=self)
        self_link = channel_el.find(f"{{{ATOM}}}link")
        assert self_link is not None
        self_link.addnext(lxml.etree.Element(f"{{{ATOM}}}link", rel="hub", href=site.hub))
    for item, article in zip(channel_el.iter("item"), items, strict=True):
        # Readers take an RSS description as HTML, so the plain-text summary is escaped:
        # "利率<3%" or a visible "<b>" must show as written, never become markup.
        description = item.find("description")
        if description is not None:
            description.text = html.escape(article.summary, quote=False)
        _add_images(item, enclosures(article, channel))
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
