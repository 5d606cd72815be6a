"""JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from syndicate.model import Article, Channel, Site
from syndicate.render.common import body, enclosures, rfc3339


def render(site: Site, channel: Channel, items: Sequence[Article]) -> bytes:
    feed: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": channel.title,
        "home_page_url": channel.link,
        "feed_url": site.feed_url(channel.id, "json"),
        "description": channel.description,
    }
    if channel.language:
        feed["language"] = channel.language
    if site.hub:
        feed["hubs"] = [{"type": "WebSub", "url": site.hub}]
    feed["items"] = [_item(article, channel) for article in items]
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _item(article: Article, channel: Channel) -> dict[str, Any]:
    item: dict[str, Any] = {"id": article.url, "url": article.url, "title": article.title}
    content = body(article, channel)
    if content:
        item["content_html"] = content
    if article.summary:
        item["summary"] = article.summary
        if not content:
            item["content_text"] = article.summary  # an item needs content_html or content_text
    elif not content:
        item["content_text"] = article.title
    images = enclosures(article, channel)
    if article.lead_image or images:
        item["image"] = (article.lead_image or images[0]).url
    item["date_published"] = rfc3339(article.published)
    item["date_modified"] = rfc3339(article.updated)
    if article.authors:
        item["authors"] = [{"name": name} for name in article.authors]
    if article.section:
        item["tags"] = [article.section]
    if images:
        item["attachments"] = [_attachment(image) for image in images]
    return item


def _attachment(image: Any) -> dict[str, Any]:
    attachment: dict[str, Any] = {"url": image.url, "mime_type": image.mime}
    if image.caption:
        attachment["title"] = image.caption
    if image.length:
        attachment["size_in_bytes"] = image.length
    return attachment
