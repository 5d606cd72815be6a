"""The part of RSS and Atom that feedgen does right, set up once for both.

feedgen is used for the channel and item skeleton. Where it is wrong we set things
ourselves, and each format module repairs the serialized tree:
- entries are prepended by default, reversing our order: we always pass order="append";
- lastBuildDate / updated default to now(), breaking byte-identical rebuilds: we always
  set them from the newest item;
- Atom entry links lose rel, type, hreflang and length (the loop variable is shadowed
  in FeedEntry.atom_entry), so enclosures and language alternates are added by atom.py;
- the RSS channel <link> is whichever link was added last, whatever its rel: the
  alternate link is added last;
- RSS enclosure length becomes the string "None" when not given: enclosures are added
  by rss.py instead, with the Media RSS caption and credit feedgen cannot express.
"""

from __future__ import annotations

from collections.abc import Sequence

import lxml.etree
from feedgen.feed import FeedGenerator  # type: ignore[import-untyped]

from syndicate import __version__
from syndicate.model import Article, Channel, Site
from syndicate.render.common import GENERATOR, body, feed_time, summary


def build(site: Site, channel: Channel, items: Sequence[Article], self_url: str,
          self_type: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    # Declares xmlns:media on the RSS root; the elements themselves are added by rss.py.
    fg.load_extension("media", atom=False, rss=True)
    fg.id(self_url)
    fg.title(channel.title)
    fg.description(channel.description)
    fg.link(href=self_url, rel="self", type=self_type)
    if site.hub:
        fg.link(href=site.hub, rel="hub")
    fg.link(href=channel.link, rel="alternate", type="text/html")  # last: see module doc
    if channel.language:
        fg.language(channel.language)
    # Atom needs an author for every entry; entries without a byline inherit this one.
    fg.author(name=site.title)
    fg.generator(GENERATOR, version=__version__)
    updated = feed_time(items)
    fg.updated(updated)
    fg.lastBuildDate(updated)
    for article in items:
        entry = fg.add_entry(order="append")
        entry.id(article.url)
        entry.guid(article.url, permalink=True)
        entry.title(article.title)
        entry.link(href=article.url, rel="alternate")
        entry.published(article.published)
        entry.updated(article.updated)
        content = body(article, channel)
        if content:
            entry.content(content, type="html")
        text = summary(article, channel)
        if text:
            entry.summary(text)  # Atom summary and RSS description
        for name in article.authors:
            entry.author(name=name)  # name only: Atom author; RSS gets dc:creator instead
        if article.authors:
            entry.dc.dc_creator(list(article.authors))
        if article.section:
            entry.category(term=article.section)
    return fg


def rss_tree(fg: FeedGenerator) -> lxml.etree._Element:
    """The RSS feed's root element, for rss.py to repair. feedgen builds this tree and
    then serializes it (rss_str); taking the tree instead spares every RSS feed a
    serialization and a parse (a quarter of rendering it). _create_rss is feedgen's own
    method, not its public API: the version is pinned in pyproject.toml (it is the last
    release)."""
    root: lxml.etree._Element = fg._create_rss()[0]
    return root


def atom_tree(fg: FeedGenerator) -> lxml.etree._Element:
    """The Atom feed's root element, for atom.py to repair, taken like rss_tree's, which
    spares every Atom feed a serialization and a parse (a third of rendering it). Until
    it is serialized, this tree is not in the Atom namespace: feedgen makes the
    namespace a plain `xmlns` attribute of the root, and its elements have bare names.
    atom.py finds and adds elements by those bare names, and serializing writes exactly
    what atom_str would have."""
    root: lxml.etree._Element = fg._create_atom()[0]
    return root
