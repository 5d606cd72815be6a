"""Lay a synthetic archive out as a Hugo site that renders only feeds, for benchmarks.

    python bench/hugo_site.py bench/corpus/10k bench/out/hugo/10k
    hugo --source bench/out/hugo/10k --quiet

Each story becomes `content/<section>/<file>.md`: YAML front matter (the title as a JSON
string, `date` = the header instant in RFC 3339, `lastmod` = the latest capture's header,
the article URL as a param) and the article HTML as the Markdown body, which goldmark
passes through as raw HTML (`unsafe: true`). A story captured twice (`NNN-recapture.txt`,
the same URL) becomes one page, as syndicate makes it one item: the text of the latest
capture, the date of the earliest. Hugo has no notion of article identity, so this
merge is done here, outside the timed run.

The config keeps exactly the feeds we compare with syndicate's 11 channels and nothing
else: `outputs` gives the home page and each section page only the RSS output format and
regular pages none at all (so no page HTML is rendered or written), and the kinds that
would add files (taxonomy, term, sitemap, robotsTXT, 404) are disabled. Hugo then writes
`public/index.xml` (every page: the "all" channel) and `public/<section>/index.xml`,
each holding the newest `services.rss.limit` = 50 pages.

Two feed templates:

- `embedded` (default): no layout of ours; Hugo's built-in `_default/rss.xml`. Items have
  title, Hugo permalink as link and guid, pubDate, and `.Summary` (the first 70 words of
  the rendered content, as plain text) as description. This is what a Hugo user gets.
- `full`: `layouts/_default/rss.xml` adds the article URL as link and guid, the section as
  category, and the full rendered body as `content:encoded`, closer to what syndicate's
  RSS carries (syndicate also writes Atom and JSON Feed, sanitizes the HTML, and adds
  Media RSS and enclosures, which this template does not).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

HEADER = re.compile(r"<!--(\d{10,13})-->")
TITLE = re.compile(r"\[(.*)\]\((\S+)\)")
SECTION = re.compile(r"^https?://[^/]+/([^/]+)/")

CONFIG = """\
baseURL: https://hugo.example.org/
title: bench
languageCode: zh-CN
hasCJKLanguage: true
disableKinds: [taxonomy, term, sitemap, robotsTXT, "404"]
outputs:
  home: [RSS]
  section: [RSS]
  page: []
services:
  rss:
    limit: 50
markup:
  goldmark:
    renderer:
      unsafe: true
"""

# The embedded template (Hugo 0.111 tpl/tplimpl/embedded/templates/_default/rss.xml), with
# the article URL as link and guid, a category and the full content.
FULL_RSS = """\
{{- $pctx := . -}}
{{- if .IsHome -}}{{ $pctx = .Site }}{{- end -}}
{{- $pages := $pctx.RegularPages -}}
{{- $limit := .Site.Config.Services.RSS.Limit -}}
{{- if ge $limit 1 -}}{{- $pages = $pages | first $limit -}}{{- end -}}
{{- printf "<?xml version=\\"1.0\\" encoding=\\"utf-8\\" standalone=\\"yes\\"?>" | safeHTML }}
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/">
  <channel>
    <title>{{ .Title }}</title>
    <link>{{ .Permalink }}</link>
    <description>{{ .Title }}</description>
    <language>{{ .Site.LanguageCode }}</language>
    {{ if not .Date.IsZero -}}
    <lastBuildDate>{{ .Date.Format "Mon, 02 Jan 2006 15:04:05 -0700" | safeHTML }}</lastBuildDate>
    {{- end }}
    {{- with .OutputFormats.Get "RSS" -}}
    {{ printf "<atom:link href=%q rel=\\"self\\" type=%q />" .Permalink .MediaType | safeHTML }}
    {{- end -}}
    {{ range $pages }}
    <item>
      <title>{{ .Title }}</title>
      <link>{{ .Params.link }}</link>
      <pubDate>{{ .Date.Format "Mon, 02 Jan 2006 15:04:05 -0700" | safeHTML }}</pubDate>
      <guid isPermaLink="true">{{ .Params.link }}</guid>
      <category>{{ .Section }}</category>
      <description>{{ .Summary | html }}</description>
      <content:encoded>{{ .Content | html }}</content:encoded>
    </item>
    {{ end }}
  </channel>
</rss>
"""


def read_story(path: Path) -> tuple[datetime, str, str, str] | None:
    """(header instant, title, url, html) of one archive file, or None if it is not one."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n", 4)
    if len(lines) < 4:
        return None
    header, title = HEADER.fullmatch(lines[0].strip()), TITLE.fullmatch(lines[1].strip())
    if not header or not title:
        return None
    value = int(header.group(1))
    when = datetime.fromtimestamp(value / 1000 if value > 10**11 else value, UTC)
    html = "\n".join(lines[3:]).strip()
    return when, title.group(1), title.group(2), html


def lay_out(source: Path, site: Path, template: str = "embedded") -> int:
    """Write the Hugo site for the archive in `source` into `site` (replaced); the number
    of pages written."""
    stories: dict[str, list[tuple[datetime, str, str, str, str]]] = {}
    for entry in sorted(os.scandir(source), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.name.endswith(".txt"):
            continue
        story = read_story(Path(entry.path))
        if story is None:
            continue
        when, title, url, html = story
        stories.setdefault(url, []).append((when, entry.name, title, url, html))
    if site.exists():
        shutil.rmtree(site)
    (site / "content").mkdir(parents=True)
    (site / "hugo.yaml").write_text(CONFIG, encoding="utf-8")
    if template == "full":
        (site / "layouts" / "_default").mkdir(parents=True)
        (site / "layouts" / "_default" / "rss.xml").write_text(FULL_RSS, encoding="utf-8")
    sections: set[str] = set()
    for captures in stories.values():
        captures.sort()
        first, last = captures[0], captures[-1]
        _, _, title, url, html = last
        match = SECTION.match(url)
        section = match.group(1) if match else "misc"
        if section not in sections:
            sections.add(section)
            (site / "content" / section).mkdir()
            (site / "content" / section / "_index.md").write_text(
                f"---\ntitle: {json.dumps(section)}\n---\n", encoding="utf-8")
        stem = captures[0][1].removesuffix(".txt")
        front = (f"---\ntitle: {json.dumps(title, ensure_ascii=False)}\n"
                 f"date: {first[0]:%Y-%m-%dT%H:%M:%SZ}\nlastmod: {last[0]:%Y-%m-%dT%H:%M:%SZ}\n"
                 f"link: {json.dumps(url)}\n---\n")
        (site / "content" / section / f"{stem}.md").write_text(front + html + "\n", encoding="utf-8")
    return len(stories)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="archive folder (from make_corpus.py)")
    parser.add_argument("site", type=Path, help="Hugo site folder to write (replaced)")
    parser.add_argument("--template", choices=("embedded", "full"), default="embedded")
    args = parser.parse_args()
    pages = lay_out(args.source, args.site, args.template)
    print(f"{pages} pages in {args.site}")


if __name__ == "__main__":
    main()
