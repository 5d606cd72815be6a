"""Atom 1.0: html content, one link rel=enclosure per image, the original-language
version as a rel=alternate link with its hreflang."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import lxml.etree

from syndicate.model import Article, Channel, Site
from syndicate.render import feedgen_base
from syndicate.render.common import enclosures, rfc3339, serialize
from syndicate.render.site import preview_url

# feedgen's tree names its elements without the Atom namespace (see feedgen_base.atom_tree).
LINK = "link"


def render(site: Site, channel: Channel, items: Sequence[Article]) -> bytes:
    self_url = site.feed_url(channel.id, "atom")
    fg = feedgen_base.build(site, channel, items, self_url, "application/atom+xml")
    root = feedgen_base.atom_tree(fg)
    # The channel's preview page: see render/site.py (preview_url) for why rel="related".
    root.findall(LINK)[-1].addnext(lxml.etree.Element(
        LINK, href=preview_url(site, channel), rel="related", type="text/html"))
    # feedgen writes +00:00; the Z form is the one most tools print and compare.
    for stamp in root.iter("updated", "published"):
        stamp.text = rfc3339(datetime.fromisoformat(stamp.text or ""))
    for entry, article in zip(root.iter("entry"), items, strict=True):
        # feedgen's entry links come out without rel/type (see feedgen_base): rebuild them.
        for link in entry.findall(LINK):
            entry.remove(link)
        anchor = entry.find("title")
        assert anchor is not None
        links = [{"rel": "alternate", "type": "text/html", "href": article.url}]
        if article.original_url:
            links.append({"rel": "alternate", "type": "text/html", "href": article.original_url,
                          "hreflang": article.original_lang or "und"})
        for image in enclosures(article, channel):
            links.append({"rel": "enclosure", "type": image.mime, "href": image.url,
                          "length": str(image.length)})
        for attributes in reversed(links):
            anchor.addnext(lxml.etree.Element(LINK, attributes))
    return serialize(root)
