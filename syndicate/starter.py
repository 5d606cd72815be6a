"""`syndicate init`: a starter config.yaml from a survey of the archive, with a comment
on every key. Values are written as JSON strings, which YAML reads as double-quoted
scalars, so no title, URL or path needs escaping by hand."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from syndicate.config import CHANNEL_ID, PLACEHOLDER_URL, RESERVED_IDS
from syndicate.parse import DEFAULT_ENCODINGS
from syndicate.survey import Survey, guess_timezone


def starter_config(survey: Survey, config_path: Path, base_url: str = PLACEHOLDER_URL) -> str:
    """The text of a config for this archive: site keys, an `all` channel with every
    channel key explained, then one channel per section found."""
    folder = config_path.absolute().parent
    source = _relative(survey.source, folder)
    host = (survey.home or "").split("://", 1)[-1].strip("/")
    title = f"{host} archive" if host else "News archive"
    timezone = guess_timezone(survey)
    home = survey.home or "https://example.com/"
    q = _quote
    lines = [
        f"# syndicate configuration, written by `syndicate init` from {survey.articles} "
        f"articles in {source}/.",
        "# Check it with `syndicate check`, see what each channel selects with `syndicate list`,",
        "# then write the feeds with `syndicate build`. README.md (\"Configuration\") has every key.",
        "",
        "site:",
        "  # The site's name: the title of the front page (index.html) and of the OPML list.",
        f"  title: {q(title)}",
        "  # The public URL of the output folder. Feed self links, the OPML list and the links",
        "  # to the preview pages are built from it: set it to where you publish the feeds.",
        f"  base_url: {q(base_url)}",
        "  # The article folder, relative to this file (or absolute).",
        f"  source: {q(source)}",
        "  # Where feeds and pages are written: relative to this file, or e.g. /var/www/feeds.",
        "  output: \"feeds\"",
        "  # The zone of <time> values written without an offset.",
        f"  # {_zone_reason(survey)}",
        f"  timezone: {q(timezone)}",
        "  # Encodings tried in order for files that are not UTF-8.",
        f"  encodings: [{', '.join(q(e) for e in DEFAULT_ENCODINGS)}]",
        "  # State kept between runs: the incremental cache and the build lock.",
        "  cache: \".syndicate\"",
        "  # Optional: a WebSub hub, linked from every feed.",
        "  # hub: \"https://websub.example.org/\"",
        "  # Optional: how often the feeds are rebuilt, as a cron expression.",
        "  # schedule: \"*/15 * * * *\"",
        "",
        "channels:",
        "  # A channel is one set of feeds: <id>.xml (RSS), <id>.atom, <id>.json, and its",
        "  # preview page <id>.html. Ids are letters, digits, '-' and '_'.",
        "  all:",
        "    # Its name in feed readers (required).",
        f"    title: {q(title)}",
        "    # The web page the channel stands for (required).",
        f"    link: {q(home)}",
        "    # One line about it (default: the title).",
        "    description: \"Every article in the archive\"",
        *_language(survey, "    "),
        "    # Which articles: without `include`, all of them. Every rule given must match:",
        "    # include:",
        "    #   section: [world]               the URL's first path segment",
        "    #   url: \"https://example.com/*\"   globs on the article URL",
        "    #   title: \"election|vote\"         regular expressions searched in the title",
        "    #   author: [JANE DOE]             any of these authors",
        "    # exclude:                         the same rules; any match leaves an article out",
        "    #   section: [opinion]",
        "    # The newest N items (default 50).",
        "    limit: 50",
        "    # Which feeds to write (default: all three).",
        "    formats: [rss, atom, json]",
        "    # full: the whole article in the feed; summary: its first paragraph.",
        "    content: full",
        "    # Where images go: inline (in the text, and the lead image as the enclosure),",
        "    # enclosure (attachments only) or both.",
        "    images: inline",
        "    # The feed's size budget: its oldest items are dropped to stay under it.",
        "    max_bytes: 5MiB",
    ]
    if survey.sections:
        lines += ["", "  # One channel per section found in the archive; the counts are as of now."]
    for section, channel_id in zip(survey.sections, _ids([s.name for s in survey.sections]),
                                   strict=True):
        count = "1 article" if section.articles == 1 else f"{section.articles} articles"
        lines += [
            f"  {channel_id}:  # {count}",
            f"    title: {q(f'{section.name} · {title}')}",
            f"    link: {q(section.link)}",
            *_language(survey, "    ", comment=False),
            "    include:",
            f"      section: [{q(section.name)}]",
        ]
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _relative(path: Path, folder: Path) -> str:
    """The path as the config should hold it: relative to the config's folder when
    inside it, absolute otherwise."""
    path = path.resolve()
    folder = folder.resolve()
    return os.path.relpath(path, folder) if path.is_relative_to(folder) else str(path)


def _language(survey: Survey, indent: str, comment: bool = True) -> list[str]:
    if survey.language:
        note = [f"{indent}# The language of its articles (optional), found from their titles."]
        return [*(note if comment else []), f"{indent}language: {_quote(survey.language)}"]
    if not comment:
        return []
    return [f"{indent}# The language of its articles, e.g. en (optional; the titles did not say).",
            f"{indent}# language: \"en\""]


def _zone_reason(survey: Survey) -> str:
    if survey.utc_offset is None:
        return "Nothing in the archive told it: set it."
    hours = int(survey.utc_offset.total_seconds() // 3600)
    return f"The archive's <time> values run at UTC{hours:+03d}:00, going by the capture headers."


def _ids(names: list[str]) -> list[str]:
    """A safe, unique channel id for each section name (`all` is taken)."""
    taken = {"all"}
    ids: list[str] = []
    for name in names:
        base = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:56] or "section"
        if base in RESERVED_IDS or base == "all" or not CHANNEL_ID.match(base):
            base = f"{base}-section"
        candidate, n = base, 2
        while candidate in taken:
            candidate, n = f"{base}-{n}", n + 1
        taken.add(candidate)
        ids.append(candidate)
    return ids
