"""(Site, Channel, [Article]) → bytes, one module per format. Knows nothing of files."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from syndicate.model import Article, Channel, Format, Site
from syndicate.render import atom, jsonfeed, rss

Renderer = Callable[[Site, Channel, Sequence[Article]], bytes]

RENDERERS: dict[Format, Renderer] = {
    "rss": rss.render,
    "atom": atom.render,
    "json": jsonfeed.render,
}
