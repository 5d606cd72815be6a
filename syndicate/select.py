"""Pure selection: merge captures of one story, apply channel rules, order, limit, and
the byte budget. No I/O, no clock."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from operator import attrgetter

from syndicate.model import Article, Channel, Entry, Rules, Stamp


@dataclass(frozen=True, slots=True)
class Merged:
    entries: list[Entry]  # one per URL
    warnings: list[tuple[str, str]]  # (file, message)


def merge_captures(captures: Iterable[Entry]) -> Merged:
    """One entry per URL. The text comes from the latest capture, `published` from the
    earliest, and `updated` from the capture where the final content first appeared: a
    re-capture that changed nothing does not move it, so readers are not told of an
    edit that did not happen."""
    first: dict[str, Entry] = {}  # url → its first capture seen
    more: dict[str, list[Entry]] = {}  # url → all its captures, for the few that have more
    for capture in captures:
        seen = first.setdefault(capture.url, capture)
        if seen is not capture:
            more.setdefault(capture.url, [seen]).append(capture)
    merged: list[Entry] = []
    warnings: list[tuple[str, str]] = []
    for url, only in first.items():
        group = more.get(url)
        if group is None:  # the common case: nothing to merge
            if only.disagreement:
                warnings.append((only.path, only.disagreement))
            merged.append(only)
            continue
        # Same instant twice: order by path, so the result never depends on listing order.
        group.sort(key=lambda c: (c.captured, c.path))
        if group[0].disagreement:
            warnings.append((group[0].path, group[0].disagreement))
        latest = group[-1]
        first_with_final_content = len(group) - 1
        while (first_with_final_content > 0
               and group[first_with_final_content - 1].content_hash == latest.content_hash):
            first_with_final_content -= 1
        published = min(c.published for c in group)
        updated = max(group[first_with_final_content].captured, published)
        merged.append(replace(latest, published=published, updated=updated))
    return Merged(merged, warnings)


def apply_ledger(entries: Iterable[Entry], known: Mapping[str, Stamp]
                 ) -> tuple[list[Entry], list[Entry]]:
    """Hold each story's dates to what readers were already told: `published` never moves
    later, and `updated` stays while the content hash is the one they saw. This matters
    when a story's earlier capture is no longer in the archive (a file re-captured in
    place). Returns the entries, and those of them whose ledger row (their hash and
    dates: see Cache.put_ledger) is new or changed."""
    out: list[Entry] = []
    changes: list[Entry] = []
    for entry in entries:
        before = known.get(entry.url)
        if before is None:  # (every story of a first build: no stamp is made here)
            changes.append(entry)
        else:
            published = min(entry.published, before.published)
            updated = entry.updated or entry.captured
            if before.content_hash == entry.content_hash:
                updated = before.updated
            updated = max(updated, published)
            if (published, updated) != (entry.published, entry.updated or entry.captured):
                entry = replace(entry, published=published, updated=updated)
            if (entry.content_hash, published, updated) != (before.content_hash,
                                                            before.published, before.updated):
                changes.append(entry)
        out.append(entry)
    return out, changes


def matches(article: Entry, rules: Rules) -> tuple[bool, ...]:
    """For each rule the channel gives, whether the article satisfies it."""
    results: list[bool] = []
    if rules.sections:
        results.append(article.section in rules.sections)
    if rules.url_globs:
        results.append(any(fnmatch.fnmatchcase(article.url, g) for g in rules.url_globs))
    if rules.title_patterns:
        results.append(any(p.search(article.title) for p in rules.title_patterns))
    if rules.authors:
        names = {a.casefold() for a in article.authors}
        results.append(any(a in names for a in rules.authors))
    return tuple(results)


def wanted(article: Entry, channel: Channel) -> bool:
    return all(matches(article, channel.include)) and not any(matches(article, channel.exclude))


def story_order(entry: Entry) -> tuple[float, str]:
    """Newest first; the same instant is ordered by URL so the order is stable."""
    return (-entry.published.timestamp(), entry.url)


def newest_first(articles: Iterable[Entry]) -> list[Entry]:
    """Sorted by story_order: by URL, then (a stable sort keeps that order among equals)
    newest first. Twice as fast as sorting by story_order's tuples, which a build of a
    large archive waits for."""
    ordered = sorted(articles, key=_URL)
    ordered.sort(key=_PUBLISHED, reverse=True)
    return ordered


_URL = attrgetter("url")
_PUBLISHED = attrgetter("published")


def select(ordered: Sequence[Entry], channel: Channel) -> list[Entry]:
    """The channel's items: its rules, newest first, at most `limit` (after merging).

    `ordered` must already be newest_first: the whole archive is sorted once per build,
    and each channel stops reading as soon as it has its `limit`."""
    chosen: list[Entry] = []
    for entry in ordered:
        if wanted(entry, channel):
            chosen.append(entry)
            if len(chosen) == channel.limit:
                break
    return chosen


def fit_budget(
    items: Sequence[Article], render: Callable[[Sequence[Article]], bytes], max_bytes: int
) -> tuple[bytes, int]:
    """Render, dropping the oldest items until the result fits `max_bytes`.

    Returns the bytes and how many items were dropped. A feed with no items is always
    rendered, even if its channel header alone were larger than the budget."""
    keep = len(items)
    data = render(items)
    while len(data) > max_bytes and keep > 0:
        # Estimate from the average item size, but always drop at least one.
        per_item = max(1, len(data) // max(1, keep))
        keep = max(0, min(keep - 1, keep - (len(data) - max_bytes) // per_item))
        data = render(items[:keep])
    return data, len(items) - keep
