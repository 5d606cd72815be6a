"""The naive baseline: the script one would write first. BeautifulSoup (lxml tree builder)
+ feedgen, one process, no cache.

    python bench/naive.py bench/corpus/10k bench/out/naive/10k

Reads every article file, parses its whole HTML into a BeautifulSoup tree, keeps every
article in memory, merges re-captures of the same URL (text of the latest capture, date
of the earliest), and writes the 50 newest items of 11 channels (every article, and one
per section of make_corpus.py) as RSS 2.0 and Atom 1.0 with feedgen: title, link, guid,
dates, author, category, the first paragraph as summary, the body as full content and
the lead image as enclosure. feedgen has no JSON Feed writer, so it writes 22 files where
syndicate writes 33 (plus its HTML previews and OPML). No sanitizing, no validation, no
handling of damaged files: just the happy path over the synthetic archive.
"""

from __future__ import annotations

import argparse
import mimetypes
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bs4 import BeautifulSoup
from feedgen.feed import FeedGenerator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_corpus import SECTIONS

LIMIT = 50
HEADER = re.compile(r"<!--(\d+)-->")
TITLE = re.compile(r"\[(.*)\]\((\S+)\)")


def image_type(url: str) -> str:
    name = parse_qs(urlsplit(url).query).get("url", [urlsplit(url).path])[0]
    return mimetypes.guess_type(name)[0] or "image/jpeg"


def parse(path: Path) -> dict | None:
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    header, title = HEADER.fullmatch(lines[0].strip()), TITLE.fullmatch(lines[1].strip())
    if not header or not title:
        return None
    soup = BeautifulSoup("\n".join(lines[3:]), "lxml")
    value = int(header.group(1))
    url = title.group(2)
    section = soup.find("section")
    first = section.find("p") if section else None
    images = [img["src"] for img in soup.find_all("img") if img.get("src")]
    body = soup.body
    return {
        "title": title.group(1),
        "url": url,
        "published": datetime.fromtimestamp(value / 1000 if value > 10**11 else value, UTC),
        "author": soup.address.get_text(strip=True) if soup.address else None,
        "section": urlsplit(url).path.strip("/").split("/")[0],
        "summary": first.get_text() if first else "",
        "content": body.decode_contents() if body else "",
        "images": list(dict.fromkeys(images)),
    }


def load(source: Path) -> list[dict]:
    stories: dict[str, dict] = {}
    for path in sorted(source.iterdir()):
        if path.name.startswith(".") or path.suffix != ".txt":
            continue
        article = parse(path)
        if article is None:
            continue
        known = stories.get(article["url"])
        if known is None:
            article["updated"] = article["published"]
            stories[article["url"]] = article
        else:  # a re-capture: newest text, earliest date
            older, newer = sorted((known, article), key=lambda a: a["published"])
            newer = dict(newer, updated=newer["published"], published=older["published"])
            stories[article["url"]] = newer
    return sorted(stories.values(), key=lambda a: (-a["published"].timestamp(), a["url"]))


def write_channel(channel: str, items: list[dict], output: Path) -> None:
    fg = FeedGenerator()
    fg.id(f"https://feeds.example.org/{channel}.atom")
    fg.title(channel)
    fg.link(href="https://cn.nytimes.com/", rel="alternate")
    fg.link(href=f"https://feeds.example.org/{channel}.xml", rel="self")
    fg.description(channel)
    fg.language("zh-CN")
    fg.updated(items[0]["updated"] if items else datetime(2000, 1, 1, tzinfo=UTC))
    for a in items:
        fe = fg.add_entry(order="append")
        fe.id(a["url"])
        fe.guid(a["url"], permalink=True)
        fe.title(a["title"])
        fe.link(href=a["url"])
        fe.published(a["published"])
        fe.updated(a["updated"])
        if a["author"]:
            fe.author(name=a["author"])
        fe.category(term=a["section"])
        fe.description(a["summary"])
        fe.content(a["content"], type="html")
        if a["images"]:
            fe.enclosure(a["images"][0], "0", image_type(a["images"][0]))
    fg.rss_file(str(output / f"{channel}.xml"))
    fg.atom_file(str(output / f"{channel}.atom"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    articles = load(args.source)
    args.output.mkdir(parents=True, exist_ok=True)
    write_channel("all", articles[:LIMIT], args.output)
    for section in SECTIONS:
        write_channel(section, [a for a in articles if a["section"] == section][:LIMIT], args.output)


if __name__ == "__main__":
    main()
