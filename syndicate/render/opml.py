"""OPML 2.0 subscription list (http://opml.org/spec2.opml): every feed of every channel.

One folder outline per channel holds one subscription outline per format, so a reader
that imports the file shows each channel's feeds together and the user keeps the format
they want. Every subscription is `type="rss"`, whatever the feed's format: it is the only
subscription type OPML 2.0 defines, and the one readers look for when they import (an
outline of another type may be passed over). The format is named in the outline's text
instead, and `version="RSS"` marks the RSS 2.0 feeds, as the spec suggests; it knows no
value for Atom or JSON Feed.

No clock: `dateModified` is the newest item's time (the feeds' own `lastBuildDate`),
and `dateCreated` is left out, since nothing in the archive says when the list began.
"""

from __future__ import annotations

from collections.abc import Sequence

import lxml.etree

from syndicate.model import Site
from syndicate.render.common import rfc822
from syndicate.render.site import Listing, feed_links

SPEC = "http://opml.org/spec2.opml"


def render(site: Site, listings: Sequence[Listing]) -> bytes:
    root = lxml.etree.Element("opml", version="2.0")
    head = lxml.etree.SubElement(root, "head")
    lxml.etree.SubElement(head, "title").text = site.title
    newest = max((listing.updated for listing in listings if listing.updated), default=None)
    if newest is not None:
        lxml.etree.SubElement(head, "dateModified").text = rfc822(newest)
    lxml.etree.SubElement(head, "docs").text = SPEC
    body = lxml.etree.SubElement(root, "body")
    for listing in listings:
        channel = listing.channel
        folder = lxml.etree.SubElement(body, "outline", text=channel.title, title=channel.title)
        for link in feed_links(site, channel):
            name = f"{channel.title} ({link.label})"
            feed = lxml.etree.SubElement(folder, "outline", type="rss", text=name, title=name,
                                         xmlUrl=link.url, htmlUrl=channel.link)
            if channel.description:
                feed.set("description", channel.description)
            if channel.language:
                feed.set("language", channel.language)
            if link.fmt == "rss":
                feed.set("version", "RSS")
    return lxml.etree.tostring(root, encoding="UTF-8", xml_declaration=True, pretty_print=True)
